"""GET /referrals/{referral_id}: the referral created from a claim, for referral_admin of the same partner."""
