"""The read and preview routes, one module each, served together by one read-only function (functions/reads).

Each module holds one route on its own Powertools ``Router``; ``functions/reads/app.py`` includes them all in
one resolver, so a partner's browsing and wizard previews meet one cold start (issue 16, item 2).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter


def new_router() -> APIGatewayHttpRouter:
    """One route module's router; the grouped function's resolver (``mci.http.resolver.new_resolver``) includes it."""
    return APIGatewayHttpRouter()  # type: ignore[no-untyped-call]  # Powertools leaves Router.__init__ unannotated
