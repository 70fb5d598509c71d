"""Rule 28 on the request models themselves: which free text may hold line breaks, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mci.domain.commands import Cancellation, Review, Submission

MULTI_LINE = [
    (Submission, "notes", {}),
    (Cancellation, "reason", {}),
    (Review, "reason", {"decision": "complete"}),
]


@pytest.mark.parametrize(("model", "field", "rest"), MULTI_LINE, ids=[m[0].__name__ for m in MULTI_LINE])
def test_notes_and_reasons_keep_line_breaks_and_nothing_else_of_the_kind(
    model: type[BaseModel], field: str, rest: dict[str, Any]
) -> None:
    kept = model.model_validate({**rest, field: "First line\nsecond line\r\nthird"})
    assert getattr(kept, field) == "First line\nsecond line\r\nthird"
    for control in ("\t", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\x0b"):
        with pytest.raises(ValidationError) as refused:
            model.model_validate({**rest, field: f"Reason{control}text"})
        assert [e["loc"] for e in refused.value.errors()] == [(field,)], repr(control)
        assert refused.value.errors()[0]["type"] == "control_character"
