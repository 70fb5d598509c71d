"""Local stack: serves the real handlers on loopback, backed by moto; never deployed (``python -m local``).

HTTP plumbing in ``server``, API Gateway in ``gateway``, Lambda in ``lambda_runtime``, moto and the API in
``api_stack``; tools (``mailbox``, ``events_feed``, ``sweeper``, ``webapp``, ``swagger``) join in ``stack``.
"""
