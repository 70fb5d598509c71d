"""POST /ops/claims/{claim_id}/review: Operations complete or reject a submitted claim."""
