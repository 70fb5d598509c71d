"""``mci.observability.error_trace``: what an unexpected error's log line carries, and what it never does."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mci.domain.claims import CustomerContact
from mci.observability import error_trace

EMAIL = "Quenby.Marrow+k7@fabrikam.com"
NAMELESS = {"email": EMAIL, "phone": "+34 611 872 943"}


def test_the_trace_names_each_exception_and_frame_but_quotes_no_message() -> None:
    def read() -> None:
        try:
            CustomerContact.model_validate(NAMELESS)
        except ValidationError as error:
            raise RuntimeError(f"could not read the contact of {EMAIL}") from error

    with pytest.raises(RuntimeError) as raised:
        read()

    trace = error_trace(raised.value)
    assert "builtins.RuntimeError" in trace
    assert "pydantic_core._pydantic_core.ValidationError (name: missing)" in trace
    assert "in read\n" in trace  # the frames stay
    assert "Quenby" not in trace
    assert "943" not in trace
