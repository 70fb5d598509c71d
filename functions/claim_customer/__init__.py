"""POST /known-customers/{customer_id}/claims: claim a known customer for one or more engagements (rule 9)."""
