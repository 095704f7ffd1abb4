from __future__ import annotations

from django.urls import path

from audit import views

urlpatterns = [
    path("permissions/compliance", views.compliance_page, name="compliance"),
]
