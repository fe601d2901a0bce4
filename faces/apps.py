from django.apps import AppConfig


class FacesConfig(AppConfig):
    name = "faces"
