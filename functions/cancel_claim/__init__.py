"""POST /claims/{claim_id}/cancellation: Cancel an active claim that is not submitted."""
