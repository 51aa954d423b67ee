"""User management: only site admins create users or change roles."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction

from fedweb.audit.models import AuditAction
from fedweb.audit.services import record


def create_user(*, by, request=None, username: str, password: str, role: str, email: str = "", full_name: str = ""):
    if not by.is_site_admin:
        raise PermissionDenied("only site admins create users")
    first, _, last = full_name.strip().partition(" ")
    with transaction.atomic():
        user = get_user_model().objects.create_user(
            username=username, password=password, email=email, role=role, first_name=first, last_name=last
        )
        record(AuditAction.USER_CREATE, actor=by, request=request, obj=user, details={"role": role})
    return user


def update_user(*, by, request=None, user, role: str, is_active: bool):
    if not by.is_site_admin:
        raise PermissionDenied("only site admins change users")
    if user == by and (role != user.role or not is_active):
        # An admin demoting or disabling themselves could leave the site without one.
        raise PermissionDenied("you cannot change your own role or disable your own account")
    with transaction.atomic():
        before = {"role": user.role, "is_active": user.is_active}
        user.role, user.is_active = role, is_active
        user.save(update_fields=["role", "is_active", "is_staff"])
        record(
            AuditAction.USER_UPDATE, actor=by, request=request, obj=user,
            details={"before": before, "after": {"role": role, "is_active": is_active}},
        )
    return user


def set_language(*, user, language: str) -> None:
    """Remember the language the user reads the pages in (one of settings.LANGUAGES)."""
    if language not in dict(settings.LANGUAGES):
        raise ValueError(f"unknown language {language!r}")
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])
