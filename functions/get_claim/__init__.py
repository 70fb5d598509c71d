"""GET /claims/{claim_id}: the claim with its deadlines, consent requests, email delivery and history."""
