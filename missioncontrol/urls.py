from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from missioncontrol import views
from missioncontrol.graphql.views import graphql_view
from missioncontrol.logins import SignInForm

urlpatterns = [
    path("", views.overview, name="overview"),
    # Pages: each app's HTML pages, Django's login and logout (templates/registration/).
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=SignInForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("graph", views.graph_page, name="graph-page"),
    path("search", views.search_page, name="search-page"),
    path("settings", views.settings_page, name="settings"),
    path("settings/tokens", views.token_page, name="token-page"),
    path("settings/tokens/<int:pk>/revoke", views.token_revoke, name="token-revoke-page"),
    path("", include("threads.urls")),
    path("", include("logs.urls")),
    path("", include("mcps.urls")),
    path("", include("audit.urls")),
    path("", include("automations.urls")),
    path("", include("kiwi.urls")),
    path("", include("notifications.urls")),
    path("", include("usage.urls")),
    # Browsers ask for /favicon.ico on pages without an icon link (the JSON ones).
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("health", views.health, name="health"),
    path("health/ready", views.health, name="health-ready"),
    path("health/live", views.liveness, name="health-live"),
    path("metrics", views.metrics, name="metrics"),
    # OpenAPI 3: the schema (YAML, or JSON with ?format=json) and Swagger UI over it.
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/schema/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("mcps.api.urls")),
    path("api/", include("threads.api.urls")),
    path("api/", include("logs.api.urls")),
    path("api/", include("audit.api.urls")),
    path("api/", include("missioncontrol.api.urls")),
    path("api/", include("automations.api.urls")),
    path("api/", include("kiwi.api.urls")),
    path("api/", include("notifications.api.urls")),
    path("api/", include("usage.api.urls")),
    path("graphql", graphql_view, name="graphql"),
    path("admin/", admin.site.urls),
]

handler404 = "missioncontrol.errors.not_found"
handler500 = "missioncontrol.errors.server_error"
