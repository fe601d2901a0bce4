from django.apps import AppConfig


class PalsConfig(AppConfig):
    name = "pals"
