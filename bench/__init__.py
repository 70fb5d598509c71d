"""``make bench``: the service measured against its physical limits, every figure a ratio to a baseline.

Sections (``python -m bench --only SECTION``): ``size``, ``cold_start``, ``snapstart`` (each HTTP function's
first request after its SnapStart priming, and without, against its warm requests), ``tracing`` (what the
Powertools Tracer adds to each cold start), ``round_trips``,
``warm_overhead``, ``sweep``, ``load``, ``session`` (the cold starts of a partner session and a simulated
day, docs/performance.md), ``scale`` (a bulk nomination on DynamoDB Local and the outbox drain,
docs/scaling.md). ``--smoke`` runs all of them with tiny sizes (the smoke test in
``make test``). Results are printed as a table and written to ``bench/results.json``; what each figure
means, the targets and how to reproduce them are in ``docs/performance.md``.
"""
