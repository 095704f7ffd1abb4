"""Filter pieces every app's FilterSet is built from (REST, the pages and saved views).

Lists take comma-separated values (`levels=WARN,ERROR`); times take ISO 8601 `from`
and `to`, or `since=24h` for the last day. A parameter that is not a filter of the
list is refused rather than ignored: a typo must not silently widen the answer.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils import timezone

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class CharInFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """`mcps=a,b`: rows whose field is any of the listed values."""


class ChoiceInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """`levels=WARN,ERROR`: like CharInFilter, each value checked against the choices."""


class DurationField(forms.CharField):
    """`24h`, `30m`, `7d`, `2w`, `90s`."""

    def to_python(self, value: Any) -> timedelta | None:
        value = super().to_python(value)
        if not value:
            return None
        match = _DURATION.match(value)
        if not match:
            raise forms.ValidationError("Give a duration like 30m, 24h or 7d.")
        try:
            duration = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
            timezone.now() - duration  # the window it opens must start within the calendar
        except OverflowError:
            raise forms.ValidationError("Give a duration that starts after the year 1.") from None
        return duration


class BooleanField(forms.Field):
    """`true`/`false` (also 1/0, yes/no); anything else is an error, not "no filter"."""

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise forms.ValidationError("Give true or false.")


class StrictBooleanFilter(django_filters.Filter):
    field_class = BooleanField


class SinceFilter(django_filters.Filter):
    """Rows from the last `since` (a duration) up to now."""

    field_class = DurationField

    def filter(self, qs: QuerySet[Any], value: timedelta | None) -> QuerySet[Any]:
        if value is None:
            return qs
        return qs.filter(**{f"{self.field_name}__gte": timezone.now() - value})


class TextSearchFilter(django_filters.CharFilter):
    """Full-text match through the model QuerySet's own `search()`."""

    def filter(self, qs: QuerySet[Any], value: str) -> QuerySet[Any]:
        return qs.search(value) if value else qs  # type: ignore[attr-defined]


# An ISO time whose "+hh:mm" offset came through an unencoded URL as " hh:mm".
_PLUS_AS_SPACE = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


class IsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """ISO 8601, forgiving the `+` of a UTC offset that a URL turned into a space."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            value = _PLUS_AS_SPACE.sub(r"\1+\2", value.strip())
        value = super().to_python(value)
        if isinstance(value, datetime):
            try:
                value.astimezone(UTC)  # what the database compares: 9999-12-31T23:59-10:00 is past it
            except OverflowError:
                raise forms.ValidationError("Give a time between the years 1 and 9999 in UTC.") from None
        return value


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = IsoDateTimeField


def time_range(field: str) -> dict[str, django_filters.Filter]:
    """`from`/`to` (and the seed's `from_timestamp`/`to_timestamp`) and `since` on `field`."""
    return {
        "from": IsoDateTimeFilter(field_name=field, lookup_expr="gte"),
        "to": IsoDateTimeFilter(field_name=field, lookup_expr="lte"),
        "from_timestamp": IsoDateTimeFilter(field_name=field, lookup_expr="gte"),
        "to_timestamp": IsoDateTimeFilter(field_name=field, lookup_expr="lte"),
        "since": SinceFilter(field_name=field),
    }


class StrictFilterSet(django_filters.FilterSet):
    """A FilterSet that refuses parameters it does not know (beyond `allowed_extra`)."""

    # Parameters that are not filters but are fine on the same URL (pagination, format).
    allowed_extra: frozenset[str] = frozenset({"cursor", "limit"})

    def problems(self) -> dict[str, list[str]]:
        """Each bad parameter with its reasons; empty when the filters are usable."""
        found = {} if self.is_valid() else {name: list(errs) for name, errs in self.errors.items()}
        for name in sorted(set(self.data) - set(self.filters) - self.allowed_extra):
            found[name] = ["Unknown parameter."]
        return found
