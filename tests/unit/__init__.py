"""Tier 1: the domain on the in-memory fakes, the template and its table, the local tools' pure parts.
Python only, fast; no AWS, no network."""
