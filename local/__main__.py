"""Run the local stack in the foreground: ``python -m local`` (``make run``), on http://127.0.0.1:3000.

PORT=... picks another port (0: a free one); Ctrl-C or SIGTERM stops it. ``mci`` comes from ``shared/``:
the Makefile puts it on PYTHONPATH (``PYTHONPATH=shared python -m local`` by hand).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

from local.server import HOST

try:
    from local.api_stack import DEFAULT_PORT, DEMO_PARTNER, OPERATIONS_PARTNER
    from local.stack import LocalStack
    from local.webapp import APP_PATH
except ModuleNotFoundError as missing:
    if (missing.name or "").partition(".")[0] != "mci":
        raise
    raise SystemExit("The handlers import mci from shared/: `make run`, or PYTHONPATH=shared python -m local") from None

STOP_SECONDS = 2.0  # on SIGTERM or Ctrl-C, what a running sweep or events poll gets to finish


def banner(stack: LocalStack) -> str:
    url = stack.url
    token = (
        f"curl -s -X POST {url}/_local/tokens -H 'Content-Type: application/json' \\\n"
        '      -d \'{"partner_id":"%s","roles":["%s"]}\' \\\n'
        "      | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])')"
    )
    return f"""
MCI engagement customers: local stack (real handlers, moto at {stack.moto_url}, demo data loaded)

  App      {url}{APP_PATH} (the partner web app: sign in, engagements, Customers page; docs/web.md)
  API      {url}
  Docs     {url}/docs (Swagger UI)   {url}/openapi.json   docs/local-stack.md
  Local    {url}/_local (tokens, clock, mailbox, sweep, events; never deployed)   Mail  {url}/_local/mailbox
  Events   {url}/_local/events (domain events on the bus, from the table's stream)
  Metrics  {url}/_local/metrics (the business metrics the functions emitted: the claim funnel, counters)

A partner user's token (p-contoso-partners, incentives_user), and an operations token:

  TOKEN=$({token % (DEMO_PARTNER, "incentives_user")}
  OPS_TOKEN=$({token % (OPERATIONS_PARTNER, "mci_operations")}

Then, with the demo data (location 1234567, customer domain fabrikam.com):

  curl -s {url}/engagements -H "Authorization: Bearer $TOKEN"

  curl -s -X POST {url}/eligibility-checks -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' \\
      -d '{{"location_id":"1234567","identifier":{{"type":"domain","value":"fabrikam.com"}}}}'

  curl -s -X POST {url}/customers -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' \\
      -d '{{"friendly_name":"Fabrikam migration","location_id":"1234567",
           "identifier":{{"type":"domain","value":"fabrikam.com"}},"engagement_ids":["e-azure-migrate"],
           "customer_contact":{{"name":"Ana Garcia","email":"ana@fabrikam.com","language":"es"}},
           "partner_contact":{{"name":"Sam Lee","email":"sam@contoso-partners.com"}}}}'

  curl -s -X POST {url}/_local/clock -d '{{"advance_days": 31}}'

Ctrl-C stops.
"""


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    port = int(os.environ.get("PORT") or DEFAULT_PORT)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Ctrl-C and SIGTERM both end the loop below, so stopping always goes through stack.stop().
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stack = LocalStack(port=port)
    try:
        stack.start()
    except OSError as error:
        print(f"cannot listen on {HOST}:{port}: {error.strerror} (PORT=... picks another)", file=sys.stderr)
        return 1
    print(banner(stack), flush=True)
    print(f"Listening on {stack.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        stack.stop(timeout=STOP_SECONDS)
        print("Local stack stopped.", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is stopped and the output flushed. The interpreter's own shutdown would now collect the
    # whole heap (moto's tables and their copies: hundreds of MB after a busy session), which took over
    # 10 s after the race tests; a process that is done has nothing left to free.
    os._exit(code)
