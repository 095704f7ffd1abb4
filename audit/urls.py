from __future__ import annotations

from django.urls import path

from audit import views

urlpatterns = [
    path("permissions", views.audit_page, name="permission-page"),
    path("permissions/compliance", views.compliance_page, name="compliance"),
]
