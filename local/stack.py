"""The local stack (SPEC §6): the API stack with its local tools, as ``make run`` and the tests start it.

    LocalStack(port=0).start()      # in this process; .url, .moto_url, .tokens, .clock; .stop()

The tools register their ``/_local`` routes (and the web app's and Swagger UI's) when imported here:
the mailbox, the metrics board, the domain events feed and the expiry sweep, which also run beside the API
from the start.
"""

from __future__ import annotations

from local import events_feed, mailbox, metrics, oidc, swagger, sweeper, webapp
from local.api_stack import ApiStack, Tool

# Imported for the routes they register: the web app under /app/, its OIDC sign-in (which extends the issuer's
# discovery document), Swagger UI under /docs.
ROUTES_ONLY = (webapp, oidc, swagger)


class LocalStack(ApiStack):
    """moto, the template's tables and functions, demo data, the API, and the local tools on 127.0.0.1."""

    def _start_tools(self) -> list[Tool]:
        mailbox.attach(self)  # stamps every email with its send time from now on
        metrics.attach(self)  # reads the EMF lines every invocation prints from now on (/_local/metrics)
        loops = [
            events_feed.start(self),  # the stream publisher, every LOCAL_EVENTS_POLL_SECONDS (default 1)
            sweeper.start_background(self),  # the expiry sweep, every LOCAL_SWEEP_SECONDS (default 60; 0: never)
        ]
        return [loop for loop in loops if loop is not None]
