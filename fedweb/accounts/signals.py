"""Audit sign-in and sign-out, wherever they happen."""

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from fedweb.audit.models import AuditAction
from fedweb.audit.services import record


@receiver(user_logged_in)
def _on_login(sender, request, user, **kwargs):
    record(AuditAction.LOGIN, actor=user, request=request, obj=user)


@receiver(user_logged_out)
def _on_logout(sender, request, user, **kwargs):
    if user is not None:
        record(AuditAction.LOGOUT, actor=user, request=request, obj=user)
