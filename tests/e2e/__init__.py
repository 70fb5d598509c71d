"""Tier 4: ``python -m local`` over HTTP as a person runs it (``make run``): the access matrix, races,
fuzzing, the mailbox and sweep, the CLI, the generated clients."""
