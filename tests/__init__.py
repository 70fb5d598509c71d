"""The suite, tier by tier (docs/testing.md): unit, moto, dynamodb_local, e2e, browser; ``support`` holds
what the tiers share (callers routed by the template, builders, the repository contract, the fault runs)."""
