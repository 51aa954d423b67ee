from django.apps import AppConfig


class I18nConfig(AppConfig):
    name = "fedweb.i18n"
    label = "fedweb_i18n"
    verbose_name = "Languages"
