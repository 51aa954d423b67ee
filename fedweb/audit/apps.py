from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "fedweb.audit"
    label = "audit"
    verbose_name = "Audit trail"
