"""Tier 2: the real handlers with real HTTP API events on moto in process (``mock_aws``): the HTTP
contract, item layouts, transactions, least privilege, the fault suite and the stateful property."""
