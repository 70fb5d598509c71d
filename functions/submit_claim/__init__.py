"""POST /claims/{claim_id}/submission: Submit a consented claim before its submission deadline."""
