"""Lambda function for POST /ops/reference-data."""
