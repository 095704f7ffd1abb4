from __future__ import annotations

from django.urls import path

from audit.api import views

urlpatterns = [
    path("audit/access", views.AccessAudit.as_view(), name="access-audit"),
    path("permissions/audit", views.PermissionAudit.as_view(), name="permission-audit"),
    path(
        "permissions/audit/<str:thread_id>", views.PermissionAudit.as_view(), name="permission-audit-thread"
    ),
]
