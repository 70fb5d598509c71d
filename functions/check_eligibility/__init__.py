"""Lambda function for POST /eligibility-checks."""
