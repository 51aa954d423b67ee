"""The one place a password is checked: throttled and audited, whoever asks.

Every caller of ``django.contrib.auth.authenticate`` (our sign-in form, Django's
admin form, anything added later) comes through here, so a lock-out at one door
holds at every door and no failure goes unrecorded.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from fedweb.audit.models import AuditAction, AuditOutcome
from fedweb.audit.services import client_ip, record

from . import throttle


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None  # not a password check (another backend's credentials)
        ip = client_ip(request)
        if throttle.seconds_locked(username, ip):
            record(AuditAction.LOGIN_THROTTLED, actor_name=username, request=request, outcome=AuditOutcome.DENIED)
            # PermissionDenied, not None: authenticate() then tries no other backend.
            raise PermissionDenied("too many failed sign-ins")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:  # unknown user, wrong password or inactive account: one answer
            throttle.register_failure(username, ip)
            record(AuditAction.LOGIN_FAILED, actor_name=username, request=request, outcome=AuditOutcome.FAILURE)
            return None
        throttle.clear_failures(username)
        return user
