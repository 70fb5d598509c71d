"""Lambda function for POST /customers."""
