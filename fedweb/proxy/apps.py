from django.apps import AppConfig


class ProxyConfig(AppConfig):
    name = "fedweb.proxy"
    label = "proxy"
    verbose_name = "Proxy"
