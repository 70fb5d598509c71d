"""Lambda function for GET /locations."""
