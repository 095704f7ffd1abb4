"""Checks of script parameters.

A directive's `{{ }}` templates may hand a script a number as text ("300"): numbers
are accepted in either form, anything else is a ValueError naming the parameter.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone


def number(name: str, value: Any, *, minimum: float = 0, strict: bool = True) -> float:
    """`value` as a float > `minimum` (>= with strict=False)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be a number, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if (value <= minimum) if strict else (value < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum:g}, not {value!r}")
    return float(value)


def integer(name: str, value: Any, *, minimum: int = 0) -> int:
    """`value` as an int >= `minimum`."""
    found = number(name, value, minimum=minimum, strict=False)
    if found != int(found):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return int(found)


def flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise ValueError(f"{name} must be true or false, not {value!r}")


def text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} is required, a non-empty string")
    return value.strip()


def ago(**delta: float) -> datetime:
    return timezone.now() - timedelta(**delta)
