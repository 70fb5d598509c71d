"""Lambda function for POST /payment-quotes."""
