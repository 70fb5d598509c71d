"""Lambda function for GET /engagements."""
