"""GET /attention-items: the partner's claims waiting for it, across its engagements, soonest deadline first."""
