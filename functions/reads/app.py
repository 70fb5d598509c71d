"""Every read and preview route of the partner app in one read-only function (issue 16, item 2).

A partner's session browses engagements, the Customers page, known customers and locations, previews
eligibility and payment, and reads claims: one function, so one cold start, for all of it. Each route keeps
its own module (``mci.http.reads``); this resolver includes their routers. Adding a customer, claiming one,
sending consent and the consent page stay separate functions (the design card, SPEC section 5).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mci import wiring
from mci.http.reads import (
    attention_items,
    claims,
    customers_page,
    eligibility,
    engagements,
    known_customers,
    locations,
    payment_quotes,
    referrals,
)
from mci.http.resolver import handle, new_resolver
from mci.snapstart import on_snapshot

# The route modules this function serves, in the order their routers are included.
ROUTES = (
    engagements,
    locations,
    known_customers,
    customers_page,
    attention_items,
    claims,
    referrals,
    eligibility,
    payment_quotes,
)

app = new_resolver()
for _route in ROUTES:
    app.include_router(_route.router)
on_snapshot(app, wiring.services, wiring.nominations, wiring.customers_page, wiring.attention)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
