"""Reference data for tests: the demo data of the local stack, and small builders around it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mci.domain.reference import ReferenceData

DEMO_DATA_PATH = Path(__file__).resolve().parents[2] / "local" / "demo_data.json"
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)

CONTOSO = "p-contoso-partners"
NORTHWIND = "p-northwind-consulting"
ADATUM = "p-adatum-services"
CONTOSO_MADRID = "1234567"
CONTOSO_SEATTLE = "1234568"  # not enrolled
NORTHWIND_DUBLIN = "7654321"
ADATUM_LISBON = "7654322"
FABRIKAM_TENANT = "5f1c2a3b-0000-4000-8000-000000000001"
TAILSPIN_TENANT = "5f1c2a3b-0000-4000-8000-000000000002"
WIDEWORLD_TENANT = "5f1c2a3b-0000-4000-8000-000000000003"
LITWARE_TENANT = "5f1c2a3b-0000-4000-8000-000000000004"  # domain known, no customer record
MIGRATE = "e-azure-migrate"  # fixed, limit 2, SMB/SMC in US/ES
SECURITY = "e-security-workshop"  # fixed, limit 1
AI = "e-ai-accelerate"  # variable
LEGACY = "e-legacy-modernize"  # closed


def demo_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEMO_DATA_PATH.read_text())
    return data


def demo_data() -> ReferenceData:
    return ReferenceData.model_validate(demo_json())


def add_customer_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "friendly_name": "Fabrikam migration",
        "location_id": CONTOSO_MADRID,
        "identifier": {"type": "domain", "value": "fabrikam.com"},
        "engagement_ids": [MIGRATE],
        "customer_contact": {"name": "Ana García", "email": "ana@fabrikam.com", "language": "es"},
        "partner_contact": {"name": "Sam Lee", "email": "sam@contoso-partners.com"},
    }
    body.update(overrides)
    return body
