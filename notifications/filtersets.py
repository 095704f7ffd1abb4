"""One FilterSet per listed model: deliveries (status, purpose, alert kind, time)."""

from __future__ import annotations

from missioncontrol.filters import ChoiceInFilter, StrictFilterSet, time_range
from notifications.models import KIND_CHOICES, Delivery


class DeliveryFilterSet(StrictFilterSet):
    status = ChoiceInFilter(choices=Delivery.Status.choices)
    purpose = ChoiceInFilter(choices=Delivery.Purpose.choices)
    kind = ChoiceInFilter(field_name="alert__kind", choices=KIND_CHOICES)
    locals().update(time_range("created_at"))

    class Meta:
        model = Delivery
        fields: list[str] = []
