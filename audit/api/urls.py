from __future__ import annotations

from django.urls import path

from audit.api import compliance, policies, views

rules = policies.PolicyRuleViewSet

urlpatterns = [
    path("audit/access", views.AccessAudit.as_view(), name="access-audit"),
    path("permissions/audit", views.PermissionAudit.as_view(), name="permission-audit"),
    path(
        "permissions/audit/<str:thread_id>", views.PermissionAudit.as_view(), name="permission-audit-thread"
    ),
    path("permissions/policies", rules.as_view({"get": "list", "post": "create"}), name="policy-list"),
    path(
        "permissions/policies/<int:pk>",
        rules.as_view({"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}),
        name="policy-detail",
    ),
    path("permissions/compliance", compliance.compliance, name="permission-compliance"),
]
