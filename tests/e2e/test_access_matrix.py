"""The access matrix (issue 6, item 1): every route of template.yaml x every way of lacking the right to act.

Generated from ``routes()`` of template.yaml and answered from the explicit ``ACCESS_TABLE`` of
``tests/support/access.py`` (the roles of each route from functions/table.py, which writes the template),
over HTTP against the local stack (the authorizer emulation and the real handlers on moto). Each (route, case)
pair is one test, numbered ``NNNofTOTAL`` in its id, and each checks the answer and that nothing changed:
every table of the template (Scan on moto) and the emails sent are the same after the request as before it.

- token cases (no token, malformed, expired, wrong issuer, wrong audience, ``alg: none``, a key the issuer
  never published): API Gateway's 401 ``{"message": "Unauthorized"}``;
- missing role: a token holding every role except those the route accepts (and one with no role): 403, API
  Gateway's own ``{"message": "Forbidden"}`` when the token lacks the route's scope (AuthorizationScopes);
- mixed roles (rule 30): on an operations route, partner A's token holding mci_operations beside a partner role,
  or naming A's organisation, or the operations organisation's token with a partner role: 403 from the handler;
  on a partner route, partner B's token with the route's roles and mci_operations sees nothing of A's;
- wrong-shape roles: a token with the route's scope whose roles claim names the route's role in a shape the
  authorizer never produces: 403 from the handler; a token whose roles claim names the route's role but whose
  scopes are another audience's (a partner's on /ops, operations' elsewhere): API Gateway's 403;
- other partner's resource: partner B, with the route's roles together and then each alone (the roles are
  functions/table.py's: each must be accepted), asking for partner A's claim, referral or known customer gets
  the 404 an unknown id gets, byte for byte; naming A's location gets the 422 an unknown location gets; a list
  shows none of A's data;
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
from local.stack import LocalStack
from mci.http.consent_pages import gone_page
from tests.support.access import (
    ACCESS_TABLE,
    CASES,
    GATEWAY_401,
    GATEWAY_403,
    INCENTIVES_ADMIN,
    INCENTIVES_USER,
    MCI_OPERATIONS,
    OPERATIONS,
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
    gateway_forbids,
    mixed_role_callers,
    problem_shape,
    refused_authorization,
    route_key,
    running_stack,
    send,
    use_stack_environment,
    wrong_shape_roles,
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
        _missing_role(stack, world, rules, TEMPLATE_ROUTES[key].scopes)
    elif case is Case.MIXED_ROLES:
        _mixed_roles(stack, world, rules)
    elif case is Case.WRONG_SHAPE_ROLES:
        _wrong_shape_roles(stack, world, rules, TEMPLATE_ROUTES[key].scopes)
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


def _token(stack: LocalStack, partner_id: str, roles: frozenset[str], claimed_roles: Any = None) -> str:
    """A valid token of the identity provider for ``roles`` (and their scopes); ``claimed_roles`` replaces its
    roles claim, keeping those scopes."""
    extra = {} if claimed_roles is None else {"roles": claimed_roles}
    return "Bearer " + stack.tokens.issue(partner_id, sorted(roles), extra_claims=extra)


def _assert_forbidden(answer: Answer, by_gateway: bool, context: Any) -> None:
    """403: API Gateway's own body when the token lacks the route's scope, else the handler's problem."""
    if by_gateway:
        assert answer.status == 403, (context, answer.status, answer.text)
        assert answer.json() == GATEWAY_403, (context, answer.text)
        return
    assert not problem_shape(answer, 403), (context, problem_shape(answer, 403), answer.text)
    assert answer.json()["code"] == "forbidden", (context, answer.text)


def _token_case(stack: LocalStack, world: World, rules: RouteRules, case: Case) -> None:
    assert rules.roles is not None
    authorization = refused_authorization(stack, case, rules.caller, rules.roles)
    answer = _call(stack, rules.request(world), authorization=authorization)
    assert answer.status == 401, f"{case}: {answer.status} {answer.text}"
    assert answer.json() == GATEWAY_401


def _missing_role(stack: LocalStack, world: World, rules: RouteRules, scopes: tuple[str, ...]) -> None:
    # Partner A's own resource, a valid request: only the role is wrong.
    for roles in (rules.missing_roles, frozenset()):
        answer = _call(stack, rules.request(world), authorization=_token(stack, PARTNER_A, roles))
        _assert_forbidden(answer, gateway_forbids(scopes, roles), sorted(roles))


def _mixed_roles(stack: LocalStack, world: World, rules: RouteRules) -> None:
    assert rules.roles is not None
    if isinstance(rules.other_partner, NotApplicable):  # an operations route: rule 30, refused in the handler
        for partner_id, roles in mixed_role_callers():
            answer = _call(stack, rules.request(world), authorization=_token(stack, partner_id, roles))
            _assert_forbidden(answer, False, (partner_id, sorted(roles)))
        return
    # A partner route: mci_operations beside the partner's own roles opens nothing of another partner's.
    _other_partner(stack, world, rules, extra_roles=frozenset({MCI_OPERATIONS}))


def _wrong_shape_roles(stack: LocalStack, world: World, rules: RouteRules, scopes: tuple[str, ...]) -> None:
    assert rules.roles is not None
    request = rules.request(world)
    for claimed in wrong_shape_roles(rules.roles):
        answer = _call(stack, request, authorization=_token(stack, rules.caller, rules.roles, claimed))
        _assert_forbidden(answer, False, claimed)
    # A well-shaped roles claim naming the route's roles, on a token the identity provider issued for the other
    # audience's roles: the scope is missing, whatever the claim says.
    other = frozenset({INCENTIVES_ADMIN}) if MCI_OPERATIONS in rules.roles else frozenset({MCI_OPERATIONS})
    issued_to = PARTNER_A if MCI_OPERATIONS in rules.roles else OPERATIONS
    assert gateway_forbids(scopes, other)
    forged = _token(stack, issued_to, other, sorted(rules.roles))
    _assert_forbidden(_call(stack, request, authorization=forged), True, ("forged", sorted(rules.roles)))


def _other_partner(
    stack: LocalStack, world: World, rules: RouteRules, extra_roles: frozenset[str] = frozenset()
) -> None:
    assert rules.roles is not None
    # The route's roles together, then each alone: every role functions/table.py names must be accepted (B's
    # answer is about ownership, never a 403), so a role added to the table that the handler refuses fails here
    # as surely as a role removed from it fails MISSING_ROLE.
    alone = [frozenset({role}) for role in sorted(rules.roles)] if len(rules.roles) > 1 else []
    for roles in (rules.roles, *alone):
        _other_partner_with(stack, world, rules, roles, extra_roles)


def _other_partner_with(
    stack: LocalStack, world: World, rules: RouteRules, roles: frozenset[str], extra_roles: frozenset[str]
) -> None:
    authorization = _token(stack, PARTNER_B, roles | extra_roles)
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
        mine = _call(stack, rules.request(world), authorization=_token(stack, PARTNER_A, roles))
        assert 200 <= mine.status < 300, mine.text
        if isinstance(expectation, OnlyOwnData):
            assert expectation.leaks(mine.json(), world), f"partner A's own answer shows none of A's data: {mine.text}"


def _public_case(stack: LocalStack, world: World, key: str, rules: RouteRules, case: Case) -> None:
    assert isinstance(rules.other_partner, NeutralPage)
    if case is Case.OTHER_PARTNER:
        request, authorization = USED_LINK[key](world), None
    elif case is Case.MISSING_ROLE:
        request, authorization = rules.request(world), _token(stack, PARTNER_B, frozenset())
    elif case is Case.MIXED_ROLES:
        request, authorization = (
            rules.request(world),
            _token(stack, PARTNER_A, frozenset({INCENTIVES_USER, MCI_OPERATIONS})),
        )
    elif case is Case.WRONG_SHAPE_ROLES:
        request = rules.request(world)
        authorization = _token(stack, PARTNER_A, frozenset({INCENTIVES_USER}), '["mci_operations"]')
    else:
        request = rules.request(world)
        authorization = refused_authorization(stack, case, PARTNER_B, frozenset({"incentives_user"}))
    answer = _call(stack, request, authorization=authorization)
    assert answer.status == 404, f"{case}: {answer.status} {answer.text[:300]}"
    assert answer.content_type == "text/html", answer.headers
    assert answer.headers.get("cache-control") == "no-store", answer.headers
    assert answer.headers.get("referrer-policy") == "no-referrer", answer.headers
    assert answer.text == ("" if request.method == "HEAD" else gone_page())
