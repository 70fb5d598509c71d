"""Free text as partners and operations send it (rule 28): no control characters, line breaks only where
the text is a note or a reason. Free text reaches email subjects and bodies; a CR LF there is a header."""

from __future__ import annotations

import re

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

# C0, DEL and C1 (Unicode category Cc), and the Unicode line and paragraph separators
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_RUN = re.compile(_CONTROL.pattern + "+")
_CONTROL_BUT_LINE_BREAKS = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def single_line(value: object) -> object:
    """Refuse text with any control character, line breaks and tabs included (before any stripping)."""
    if isinstance(value, str) and _CONTROL.search(value):
        raise PydanticCustomError("control_character", "must not contain control characters or line breaks")
    return value


def multi_line(value: object) -> object:
    """Refuse text with a control character other than a line break (LF, CR)."""
    if isinstance(value, str) and _CONTROL_BUT_LINE_BREAKS.search(value):
        raise PydanticCustomError("control_character", "must not contain control characters other than line breaks")
    return value


def one_line(text: str) -> str:
    """``text`` with every run of control characters and line breaks as one space: an email subject."""
    return _CONTROL_RUN.sub(" ", text)


# Last in an Annotated type, so they see the text as sent, before whitespace is stripped.
SingleLine = BeforeValidator(single_line)
MultiLine = BeforeValidator(multi_line)
