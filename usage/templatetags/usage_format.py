"""How the usage page writes token counts and costs."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


def money(value: float) -> str:
    """A cost with the decimals that make it readable: cents above 1, more below."""
    if value == 0:
        return "0.00"
    if value >= 1:
        return f"{value:,.2f}"
    if value >= 0.01:
        return f"{value:.4f}"
    return f"{value:.6f}"


@register.filter
def cost(sums: dict[str, Any], currency: str) -> str:
    """`12.34 USD`; `≥ 12.34 USD` when some tokens have no price; `unknown` when none has."""
    if sums.get("cost") is None:
        return "unknown"
    shown = f"{money(sums['cost'])} {currency}"
    return shown if sums.get("cost_complete", True) else f"≥ {shown}"


@register.filter
def tokens(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"
