"""Issue 14: the web app offers an action only to the roles the API allows it to (rule 1), from one list."""

from __future__ import annotations

import re
from pathlib import Path

from mci.domain.principal import CLAIM_ROLES
from mci.domain.referrals import REFERRAL_READERS

SESSION_JS = Path(__file__).resolve().parents[2] / "web" / "js" / "session.js"


def _roles(constant: str) -> set[str]:
    source = SESSION_JS.read_text(encoding="utf-8")
    found = re.search(rf"{constant}\s*[:=]\s*\[([^\]]*)\]", source)
    assert found, f"{constant} not found in web/js/session.js"
    return set(re.findall(r'"(\w+)"', found.group(1)))


def test_the_app_offers_claim_actions_to_the_claim_roles() -> None:
    assert _roles("CLAIM_ROLES") == {role.value for role in CLAIM_ROLES}


def test_the_app_shows_referrals_to_the_referral_readers() -> None:
    assert _roles("referrals") == {role.value for role in REFERRAL_READERS}
