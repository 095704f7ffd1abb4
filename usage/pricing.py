"""The price table of `usage.prices` (mission_control.yml) as Python look-ups and SQL.

A model is priced by its exact name, else by the longest pattern (`name*`) it starts
with. A model with no price has no cost: the SQL leaves its cost NULL and counts its
tokens as unpriced, so a total never passes off an unknown cost as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Case, F, FloatField, Q, Value, When
from django.db.models.functions import Cast

from missioncontrol.config import ModelPrice, UsageConfig

PER = 1_000_000  # prices are per million tokens


@dataclass(frozen=True)
class PriceTable:
    currency: str
    exact: dict[str, ModelPrice]
    prefixes: tuple[tuple[str, ModelPrice], ...]  # longest first

    @classmethod
    def of(cls, config: UsageConfig) -> PriceTable:
        exact = {m: p for m, p in config.prices.items() if not m.endswith("*")}
        prefixes = [(m[:-1], p) for m, p in config.prices.items() if m.endswith("*")]
        return cls(config.currency, exact, tuple(sorted(prefixes, key=lambda mp: -len(mp[0]))))

    @classmethod
    def configured(cls) -> PriceTable:
        return cls.of(settings.MC.usage)

    def price_of(self, model: str) -> ModelPrice | None:
        if model in self.exact:
            return self.exact[model]
        return next((price for prefix, price in self.prefixes if model.startswith(prefix)), None)

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        """What the tokens of one model cost, or None when the model has no price."""
        price = self.price_of(model)
        if price is None:
            return None
        return (input_tokens * price.input + output_tokens * price.output) / PER

    def _cases(self) -> list[tuple[Q, ModelPrice]]:
        cases = [(Q(model=model), price) for model, price in self.exact.items()]
        return cases + [(Q(model__startswith=prefix), price) for prefix, price in self.prefixes]

    def cost_expression(self) -> Any:
        """A row's cost in millionths of the currency (NULL for a model with no price); sum it."""
        whens = [
            When(q, then=F("input_tokens") * Value(p.input) + F("output_tokens") * Value(p.output))
            for q, p in self._cases()
        ]
        if not whens:  # no price table: a typed NULL (PostgreSQL cannot sum an untyped one)
            return Cast(Value(None), output_field=FloatField())
        return Case(*whens, default=Value(None), output_field=FloatField())

    def unpriced_expression(self) -> Any:
        """A row's tokens if its model has no price, else 0; sum it."""
        whens = [When(q, then=Value(0)) for q, _ in self._cases()]
        return Case(*whens, default=F("input_tokens") + F("output_tokens"))
