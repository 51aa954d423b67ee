from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "fedweb.api"
    label = "api"
    verbose_name = "API"
