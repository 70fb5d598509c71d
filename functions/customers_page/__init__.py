"""GET /engagements/{engagement_id}/customers: the Customers page, tab by tab (rules 21-24)."""
