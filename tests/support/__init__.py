"""What the tiers share: callers that route ``post(path, body)`` through template.yaml, data builders,
the repository contract run on three stores, table snapshots, the fault runs and the access vocabulary."""
