from django.conf import settings
from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health, metrics


class IdConverter:
    """Positive ids that fit a bigint; anything longer is simply not found."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

urlpatterns = [
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", metrics.metrics_view, name="prometheus-django-metrics"),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/", include("conversations.urls")),
    path("api/", include("messaging.urls")),
    path("api/", include("webhooks.urls")),
    path("admin/", admin.site.urls),
]
if settings.PROVIDER_SANDBOX:
    urlpatterns.append(path("sandbox/", include("providers.sandbox.urls")))
if settings.BENCH_CEILING:
    from config.ceiling import CeilingApi

    urlpatterns.append(path("bench/ceiling", CeilingApi.as_view(), name="bench-ceiling"))

handler400 = "config.errors.handler400"
handler403 = "config.errors.handler403"
handler404 = "config.errors.handler404"
handler500 = "config.errors.handler500"
