"""Whole numbers and true/false from text: environment variables, command-line flags, web requests.

One parser for each, so that "8", 8 and 8.0 (JSON) are the same number everywhere and every
refusal names what was being read and says what is allowed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")  # an empty variable is an unset one


class NumberRefused(ValueError):
    """A value that is not an allowed whole number; `number` is the value as a whole number, when it is one."""

    def __init__(self, message: str, number: int | None = None):
        super().__init__(message)
        self.number = number


def describe_whole_numbers(low: int | None = None, high: int | None = None, even: bool = False) -> str:
    """ "a whole number from 1 to 1000", "an even number of 2 or more", "a positive whole number"."""
    what = "an even number" if even else "a whole number"
    if low is not None and high is not None:
        return f"{what} from {low} to {high}"
    if low == 1 and not even:
        return "a positive whole number"
    if low is not None:
        return f"{what} of {low} or more"
    if high is not None:
        return f"{what} of at most {high}"
    return what


def whole_number(value: Any, name: str, low: int | None = None, high: int | None = None, even: bool = False) -> int:
    """`value` (an int, a whole float such as JSON's 25.0, or its text) as an int within [low, high],
    even when asked; else `NumberRefused` "{name} must be a whole number from 1 to 1000; got '0'."."""
    number = as_whole_number(value)
    if (
        number is None
        or (low is not None and number < low)
        or (high is not None and number > high)
        or (even and number % 2)
    ):
        raise NumberRefused(f"{name} must be {describe_whole_numbers(low, high, even)}; got {value!r}.", number)
    return number


def as_whole_number(value: Any) -> int | None:
    """`value` as an int when it is a whole number (or the text of one), else None. Booleans are not numbers."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number != int(number):
        return None
    return int(number)


def truth(value: Any, name: str) -> bool:
    """`value` as a bool: a bool, 1/0, or 1/true/yes/on and 0/false/no/off (any case; empty is false);
    anything else is `ValueError` "{name} must be true or false; got ..."."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ValueError(f"{name} must be true or false; got {value!r}.")


def on_spaces(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this runs on Hugging Face Spaces (which sets SPACE_ID in every Space)."""
    return bool((os.environ if environ is None else environ).get("SPACE_ID"))
