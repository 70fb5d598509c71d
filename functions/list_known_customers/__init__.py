"""GET /known-customers: customers that granted consent on an earlier claim of the caller's partner."""
