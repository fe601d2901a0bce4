from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from cvi_site.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("v2/openapi.yaml", SpectacularAPIView.as_view(), name="openapi-schema"),
    path("v2/docs/", SpectacularRedocView.as_view(url_name="openapi-schema"), name="api-docs"),
    path("v2/swagger/", SpectacularSwaggerView.as_view(url_name="openapi-schema"), name="api-swagger"),
    path("", include("pals.urls")),
    path("", include("faces.urls")),
    path("", include("conversations.urls")),
    path("", include("knowledge.urls")),
    path("", include("pronunciations.urls")),
    path("", include("objectives.urls")),
    path("", include("guardrails.urls")),
    path("", include("cvi_site.web_urls")),
    path("", include("conversations.page_urls")),
]
