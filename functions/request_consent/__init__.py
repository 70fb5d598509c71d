"""POST /claims/{claim_id}/consent-requests: send or resend the consent email (rules 13-14)."""
