"""The access matrix (issue 6, item 1): every route of template.yaml x every way of lacking the right to act.

Generated from ``routes()`` of template.yaml and answered from the explicit ``ACCESS_TABLE`` of
``tests/support/access.py``, over HTTP against the local stack (the authorizer emulation and the real
handlers on moto). Each (route, case) pair is one test, numbered ``NNNofTOTAL`` in its id, and each
checks the answer and that nothing changed: every table of the template (Scan on moto) and the emails
sent are the same after the request as before it.

- token cases (no token, malformed, expired, wrong issuer, wrong audience, ``alg: none``, a key the issuer
  never published): API Gateway's 401 ``{"message": "Unauthorized"}``;
- missing role: a token holding every role except those the route accepts (and one with no role): 403;
- other partner's resource: partner B, with the right role, asking for partner A's claim, referral or known
  customer gets the 404 an unknown id gets, byte for byte; naming A's location gets the 422 an unknown
  location gets; a list shows none of A's data;
- public consent pages: whatever the Authorization header, an unknown link, and the link A's customer
  already used, get the one neutral 404 page.

A route without an entry in the table, or an entry without a route, fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from local.cloudformation import Route, routes
from local.server import LocalStack
from mci.http.consent_pages import gone_page
from tests.support.access import (
    ACCESS_TABLE,
    CASES,
    GATEWAY_401,
    PARTNER_A,
    PARTNER_B,
    TOKEN_CASES,
    USED_LINK,
    Answer,
    Case,
    NeutralPage,
    NotApplicable,
    NotFoundLikeUnknown,
    OnlyOwnData,
    RefusedLikeUnknown,
    Request,
    RouteRules,
    StateProbe,
    World,
    build_world,
    describe_change,
    problem_shape,
    refused_authorization,
    route_key,
    running_stack,
    send,
    use_stack_environment,
)

pytestmark = pytest.mark.e2e

TEMPLATE_ROUTES: dict[str, Route] = {route_key(r.method, r.path): r for r in routes()}


def _pairs() -> tuple[list[Any], list[tuple[str, str]]]:
    """(route key, case) for every template route x case; NotApplicable ones listed apart, with reasons."""
    applicable: list[tuple[str, Case]] = []
    not_applicable: list[tuple[str, str]] = []
    for key in TEMPLATE_ROUTES:
        rules = ACCESS_TABLE.get(key)
        for case in CASES:
            if rules is not None and case is Case.OTHER_PARTNER and isinstance(rules.other_partner, NotApplicable):
                not_applicable.append((key, rules.other_partner.reason))
                continue
            applicable.append((key, case))
    total = len(applicable)
    params = [
        pytest.param(key, case, id=f"{number:03d}of{total}-{key}-{case}")
        for number, (key, case) in enumerate(applicable, start=1)
    ]
    return params, not_applicable


PAIRS, NOT_APPLICABLE = _pairs()


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack() as running:
        yield running


@pytest.fixture(autouse=True)
def _stack_environment(stack: LocalStack, aws_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    use_stack_environment(stack, monkeypatch)


@pytest.fixture(scope="module")
def world(stack: LocalStack) -> World:
    return build_world(stack)


@pytest.fixture(scope="module")
def probe(stack: LocalStack) -> StateProbe:
    return StateProbe(stack)


# ---------------------------------------------------------------- the table and the template agree


@pytest.mark.parametrize("key", sorted(TEMPLATE_ROUTES))
def test_every_template_route_has_an_entry(key: str) -> None:
    rules = ACCESS_TABLE.get(key)
    assert rules is not None, f"{key} is in template.yaml but not in ACCESS_TABLE (tests/support/access.py)"
    assert rules.public == (not TEMPLATE_ROUTES[key].authorized), (
        f"{key}: the table says {'public' if rules.public else 'authorized'}, template.yaml says "
        f"{'authorized' if TEMPLATE_ROUTES[key].authorized else 'public (no authorizer)'}"
    )


@pytest.mark.parametrize("key", sorted(ACCESS_TABLE))
def test_every_entry_is_a_template_route(key: str) -> None:
    assert key in TEMPLATE_ROUTES, f"ACCESS_TABLE has {key}, which template.yaml does not deploy"


def test_the_matrix_covers_every_route_and_case() -> None:
    covered = {(values[0], values[1]) for values in (param.values for param in PAIRS)}
    skipped = {(key, Case.OTHER_PARTNER) for key, _ in NOT_APPLICABLE}
    assert covered | skipped == {(key, case) for key in TEMPLATE_ROUTES for case in CASES}
    assert all(reason for _, reason in NOT_APPLICABLE)
    # The figures of the closing note: template routes x cases, and how many are pairs to run.
    assert len(covered) == len(TEMPLATE_ROUTES) * len(CASES) - len(NOT_APPLICABLE)


# ---------------------------------------------------------------- the matrix


@pytest.mark.parametrize(("key", "case"), PAIRS)
def test_access(stack: LocalStack, world: World, probe: StateProbe, key: str, case: Case) -> None:
    rules = ACCESS_TABLE.get(key)
    assert rules is not None, f"{key} is in template.yaml but not in ACCESS_TABLE (tests/support/access.py)"
    before = probe.capture()
    if rules.public:
        _public_case(stack, world, key, rules, case)
    elif case in TOKEN_CASES:
        _token_case(stack, world, rules, case)
    elif case is Case.MISSING_ROLE:
        _missing_role(stack, world, rules)
    else:
        _other_partner(stack, world, rules)
    after = probe.capture()
    assert after == before, f"{key} x {case} changed state:\n{describe_change(before, after)}"


def _call(stack: LocalStack, request: Request, *, authorization: str | None) -> Answer:
    headers = {"Idempotency-Key": f"access-{uuid.uuid4()}"} if request.method == "POST" else {}
    return send(
        stack.url,
        request.method,
        request.path,
        request.body,
        authorization=authorization,
        headers=headers,
        content_type=request.content_type,
    )


def _token(stack: LocalStack, partner_id: str, roles: frozenset[str]) -> str:
    return "Bearer " + stack.tokens.issue(partner_id, sorted(roles))


def _token_case(stack: LocalStack, world: World, rules: RouteRules, case: Case) -> None:
    assert rules.roles is not None
    authorization = refused_authorization(stack, case, rules.caller, rules.roles)
    answer = _call(stack, rules.request(world), authorization=authorization)
    assert answer.status == 401, f"{case}: {answer.status} {answer.text}"
    assert answer.json() == GATEWAY_401


def _missing_role(stack: LocalStack, world: World, rules: RouteRules) -> None:
    # Partner A's own resource, a valid request: only the role is wrong.
    for roles in (rules.missing_roles, frozenset()):
        answer = _call(stack, rules.request(world), authorization=_token(stack, PARTNER_A, roles))
        assert not problem_shape(answer, 403), (sorted(roles), problem_shape(answer, 403), answer.text)
        assert answer.json()["code"] == "forbidden", answer.text


def _other_partner(stack: LocalStack, world: World, rules: RouteRules) -> None:
    assert rules.roles is not None
    authorization = _token(stack, PARTNER_B, rules.roles)
    theirs = _call(stack, (rules.as_other or rules.request)(world), authorization=authorization)
    expectation = rules.other_partner
    if isinstance(expectation, NotFoundLikeUnknown | RefusedLikeUnknown):
        status = 404 if isinstance(expectation, NotFoundLikeUnknown) else expectation.status
        unknown = _call(stack, expectation.unknown(world), authorization=authorization)
        assert not problem_shape(unknown, status), (problem_shape(unknown, status), unknown.text)
        assert not problem_shape(theirs, status), (problem_shape(theirs, status), theirs.text)
        assert theirs.json() == unknown.json(), "another partner's resource must look exactly like an unknown one"
    elif isinstance(expectation, OnlyOwnData):
        assert theirs.status == 200, theirs.text
        assert expectation.leaks(theirs.json(), world) == [], theirs.text
    else:  # pragma: no cover - NotApplicable pairs are not generated; NeutralPage is public only
        pytest.fail(f"no other-partner check for {expectation!r}")
    if rules.read_only:
        # The control: the owner's own request succeeds, and a list shows the owner's data to the owner.
        mine = _call(stack, rules.request(world), authorization=_token(stack, PARTNER_A, rules.roles))
        assert 200 <= mine.status < 300, mine.text
        if isinstance(expectation, OnlyOwnData):
            assert expectation.leaks(mine.json(), world), f"partner A's own answer shows none of A's data: {mine.text}"


def _public_case(stack: LocalStack, world: World, key: str, rules: RouteRules, case: Case) -> None:
    assert isinstance(rules.other_partner, NeutralPage)
    if case is Case.OTHER_PARTNER:
        request, authorization = USED_LINK[key](world), None
    elif case is Case.MISSING_ROLE:
        request, authorization = rules.request(world), _token(stack, PARTNER_B, frozenset())
    else:
        request = rules.request(world)
        authorization = refused_authorization(stack, case, PARTNER_B, frozenset({"incentives_user"}))
    answer = _call(stack, request, authorization=authorization)
    assert answer.status == 404, f"{case}: {answer.status} {answer.text[:300]}"
    assert answer.content_type == "text/html", answer.headers
    assert answer.headers.get("cache-control") == "no-store", answer.headers
    assert answer.headers.get("referrer-policy") == "no-referrer", answer.headers
    assert answer.text == ("" if request.method == "HEAD" else gone_page())
