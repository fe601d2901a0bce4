from django.apps import AppConfig


class CviSiteConfig(AppConfig):
    name = "cvi_site"
    verbose_name = "Accounts and API keys"

    def ready(self) -> None:
        from cvi_site import schema  # noqa: F401  (registers the x-api-key OpenAPI scheme)
