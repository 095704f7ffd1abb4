"""Notification pages: the channels with open alerts, and one channel's settings, test
button and delivery history.

Thin over the same code as /api/notifications/: a channel is checked and saved by the
API's ChannelSerializer, a test goes through `dispatch.send_test`, every row through
`visible_to`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from missioncontrol import roles
from missioncontrol.models import Team
from notifications import dispatch
from notifications.api.serializers import ChannelSerializer
from notifications.kinds import KINDS, ONE_OFF
from notifications.models import (
    CHANGE_CHANNEL,
    TEST_CHANNEL,
    VIEW_CHANNEL,
    Alert,
    Channel,
    Delivery,
    Severity,
    sees_targets,
)

ADD_CHANNEL = "notifications.add_channel"
DELETE_CHANNEL = "notifications.delete_channel"
HISTORY_SHOWN = 50
ALERTS_SHOWN = 100


def _require(request: HttpRequest, permission: str) -> None:
    if not roles.can(request.user, permission):
        raise PermissionDenied(f"Your role does not allow this (needs {permission}).")


@login_required
def channel_list(request: HttpRequest) -> HttpResponse:
    _require(request, VIEW_CHANNEL)
    channels = Channel.objects.visible_to(request.user).select_related("team")
    alerts = Alert.objects.visible_to(request.user).open().exclude(kind__in=ONE_OFF).select_related("team")
    context = {
        "channels": [(c, c.targets_for(request.user)) for c in channels],
        "alerts": alerts.order_by("-opened_at")[:ALERTS_SHOWN],
        "can_add": roles.can(request.user, ADD_CHANNEL),
    }
    return render(request, "notifications/channels.html", context)


def _history(request: HttpRequest, channel: Channel) -> list[Delivery]:
    rows = Delivery.objects.visible_to(request.user).filter(channel=channel)
    return list(rows.select_related("alert", "channel").prefetch_related("attempts")[:HISTORY_SHOWN])


def _submitted(request: HttpRequest) -> dict[str, Any]:
    """The channel form as the API's fields."""
    post = request.POST
    return {
        "name": post.get("name", "").strip(),
        "team": post.get("team") or None,
        "targets": [line.strip() for line in post.get("targets", "").splitlines() if line.strip()],
        "kinds": post.getlist("kinds"),
        "min_severity": post.get("min_severity", Severity.INFO),
        "quiet_start": post.get("quiet_start") or None,
        "quiet_end": post.get("quiet_end") or None,
        "time_zone": post.get("time_zone", "").strip() or "UTC",
        "quiet_critical": post.get("quiet_critical") == "on",
        "send_resolved": post.get("send_resolved") == "on",
        "enabled": post.get("enabled") == "on",
    }


def _page(
    request: HttpRequest,
    channel: Channel | None,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    tested: Delivery | None = None,
    status: int = 200,
) -> HttpResponse:
    editable = roles.can(request.user, CHANGE_CHANNEL if channel else ADD_CHANNEL)
    if form is None:
        form = (
            dict(ChannelSerializer(channel, context={"request": request}).data)
            if channel
            else {"kinds": [], "min_severity": Severity.INFO, "time_zone": "UTC", "enabled": True}
            | {"quiet_critical": True, "send_resolved": True, "targets": []}
        )
    context = {
        "channel": channel,
        "form": form,
        "targets_text": "\n".join(form.get("targets") or []),
        "errors": errors or {},
        "editable": editable,
        "sees_targets": sees_targets(request.user),
        "can_test": channel is not None and roles.can(request.user, TEST_CHANNEL),
        "can_delete": channel is not None and roles.can(request.user, DELETE_CHANNEL),
        "tested": tested,
        "history": _history(request, channel) if channel else [],
        "kinds": KINDS,
        "severities": Severity.values,
        "teams": Team.objects.order_by("slug") if editable else [],
    }
    response = render(request, "notifications/channel.html", context, status=status)
    response["Cache-Control"] = "no-store"  # an admin's page holds the target URLs
    return response


def _save(request: HttpRequest, channel: Channel | None) -> HttpResponse:
    data = _submitted(request)
    body = ChannelSerializer(channel, data=data, context={"request": request})
    if not body.is_valid():
        errors = {k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in body.errors.items()}
        return _page(request, channel, form=data, errors=errors, status=400)
    saved = body.save()
    return redirect("notification-channel-page", saved.pk)


@login_required
def channel_new(request: HttpRequest) -> HttpResponse:
    _require(request, ADD_CHANNEL)
    if request.method == "POST":
        return _save(request, None)
    return _page(request, None)


@login_required
def channel_page(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, VIEW_CHANNEL)
    channel = get_object_or_404(Channel.objects.visible_to(request.user).select_related("team"), pk=pk)
    if request.method == "POST":
        _require(request, CHANGE_CHANNEL)
        return _save(request, channel)
    return _page(request, channel)


@login_required
@require_POST
def channel_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a test message now; the page (or, for htmx, its outcome and history) says how it went."""
    _require(request, TEST_CHANNEL)
    channel = get_object_or_404(Channel.objects.visible_to(request.user).select_related("team"), pk=pk)
    if not channel.targets:
        return _page(request, channel, errors={"targets": ["the channel has no targets to test"]}, status=400)
    tested = dispatch.send_test(channel)
    if request.headers.get("HX-Request"):
        context = {"tested": tested, "history": _history(request, channel)}
        return render(request, "notifications/_tested.html", context)
    return _page(request, channel, tested=tested)


@login_required
@require_POST
def channel_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, DELETE_CHANNEL)
    get_object_or_404(Channel.objects.visible_to(request.user), pk=pk).delete()
    return redirect("notification-list-page")
