from django.apps import AppConfig


class PronunciationsConfig(AppConfig):
    name = "pronunciations"
    verbose_name = "Pronunciation dictionaries"
