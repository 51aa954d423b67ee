"""User management: only site admins create users, edit them, set their passwords and deactivate them.

Users are deactivated, never deleted: the audit trail names each actor by id (and hashes it), and
datasets, grants and projects keep pointing at the people who made them. A password set by an admin
or a deactivation ends the user's sessions and revokes their API tokens at once, so whoever held
them is out now, not when the session expires. Two guard rails hold whoever asks: an admin never
demotes or deactivates themselves, and the site always keeps one active site admin.
"""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from fedweb.api.errors import ServiceError
from fedweb.api.models import ApiToken
from fedweb.audit.models import AuditAction
from fedweb.audit.services import record

from .models import Role

# The fields an admin edits on a user's page, as the audit trail names them.
PROFILE_FIELDS = ("first_name", "last_name", "email", "role", "language")


def _require_admin(by) -> None:
    if not by.is_site_admin:
        raise PermissionDenied(_("Only site admins manage users."))


def _split_name(full_name: str) -> tuple[str, str]:
    first, _sep, last = full_name.strip().partition(" ")
    return first[:150], last.strip()[:150]


def _check_language(language: str) -> None:
    if language and language not in dict(settings.LANGUAGES):
        raise ServiceError(_("Choose one of the site's languages."), details={"language": [_("Unknown language.")]})


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ServiceError(_("Choose one of the roles."), details={"role": [_("Unknown role.")]})


def _check_password(password: str, user) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ServiceError(_("Choose another password."), details={"password": list(exc.messages)}) from None


def _keep_an_admin(user) -> None:
    """Refuse to take the site's last active admin away (call inside the transaction).

    The admins' rows are locked first, so two admins demoting each other at the same moment
    cannot both succeed and leave the site with none."""
    admins = get_user_model().objects.select_for_update().filter(is_active=True).filter(
        Q(role=Role.ADMIN) | Q(is_superuser=True)
    )
    if not admins.exclude(pk=user.pk).exists():
        raise ServiceError(
            _("%(name)s is the site's last active admin. Make another user a site admin first, so that "
              "someone can still manage the site.") % {"name": user.get_username()},
            code="last_admin",
        )


def end_sessions(user, *, keep: str | None = None) -> int:
    """Delete the user's sessions from the session store (all but ``keep``); returns how many.

    Django already refuses a session of an inactive user, or one made before the password
    changed; deleting them as well means a reactivated account does not bring old sessions back."""
    engine = import_module(settings.SESSION_ENGINE)
    get_model = getattr(engine.SessionStore, "get_model_class", None)
    if get_model is None:  # a store that cannot be listed (cookies, cache): the checks above still hold
        return 0
    ended = []
    for session in get_model().objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.session_key != keep and session.get_decoded().get("_auth_user_id") == str(user.pk):
            ended.append(session.session_key)
    get_model().objects.filter(session_key__in=ended).delete()
    return len(ended)


def _revoke_tokens(user) -> int:
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def create_user(*, by, request=None, username: str, password: str, role: str, email: str = "", full_name: str = "",
                language: str = ""):
    _require_admin(by)
    _check_role(role)
    _check_language(language)
    User = get_user_model()
    if User.objects.filter(username__iexact=username).exists():
        raise ServiceError(_("A user with this name already exists."), details={"username": [_("Taken.")]})
    first, last = _split_name(full_name)
    _check_password(password, User(username=username, email=email, first_name=first, last_name=last))
    with transaction.atomic():
        user = User.objects.create_user(
            username=username, password=password, email=email, role=role, first_name=first, last_name=last,
            language=language,
        )
        record(AuditAction.USER_CREATE, actor=by, request=request, obj=user,
               details={"user": user.get_username(), "role": role, "email": email, "name": user.get_full_name()})
    return user


def update_user(*, by, request=None, user, full_name: str, email: str, role: str, language: str = ""):
    """Change a user's name, e-mail, role and language; the trail keeps each change's before and after."""
    _require_admin(by)
    _check_role(role)
    _check_language(language)
    first, last = _split_name(full_name)
    wanted = {"first_name": first, "last_name": last, "email": email.strip(), "role": role, "language": language}
    if user.pk == by.pk and role != user.role:
        raise ServiceError(_("You cannot change your own role: another site admin has to do it."),
                           code="own_account", details={"role": [_("This is your own account.")]})
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().get(pk=user.pk)
        if role != user.role and role != Role.ADMIN and user.is_site_admin:
            _keep_an_admin(user)
        before = {name: getattr(user, name) for name in PROFILE_FIELDS}
        changed = {name: value for name, value in wanted.items() if before[name] != value}
        if not changed:
            return user
        for name, value in changed.items():
            setattr(user, name, value)
        fields = list(changed)
        if "role" in changed:
            if role != Role.ADMIN:
                # The site's roles are the truth: a demoted admin keeps no way into Django's admin
                # site and no superuser power (is_site_admin honours is_superuser).
                user.is_staff = user.is_superuser = False
            fields += ["is_staff", "is_superuser"]  # save() sets is_staff for an admin
        user.save(update_fields=fields)
        record(
            AuditAction.USER_UPDATE, actor=by, request=request, obj=user,
            details={"user": user.get_username(), "before": {k: before[k] for k in changed}, "after": changed},
        )
    return user


def set_password(*, by, request=None, user, password: str) -> int:
    """An admin sets a new password for someone who lost theirs. Their sessions end and their API
    tokens are revoked (whoever had the old password may have made them); returns the tokens revoked."""
    _require_admin(by)
    if user.pk == by.pk:
        # Someone at an admin's unlocked screen must not take the account over without its password.
        raise ServiceError(_("Change your own password on the Password page, with your current one."),
                           code="own_account")
    _check_password(password, user)
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().get(pk=user.pk)
        user.set_password(password)
        user.save(update_fields=["password"])
        revoked = _revoke_tokens(user)
        ended = end_sessions(user)
        record(AuditAction.USER_PASSWORD_SET, actor=by, request=request, obj=user,
               details={"user": user.get_username(), "tokens_revoked": revoked, "sessions_ended": ended})
    return revoked


def deactivate(*, by, request=None, user):
    """Stop a user signing in or using a token; their actions and objects stay as they are."""
    _require_admin(by)
    if user.pk == by.pk:
        raise ServiceError(_("You cannot deactivate your own account: another site admin has to do it."),
                           code="own_account")
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().get(pk=user.pk)
        if not user.is_active:
            return user
        if user.is_site_admin:
            _keep_an_admin(user)
        user.is_active = False
        user.save(update_fields=["is_active"])
        revoked = _revoke_tokens(user)
        ended = end_sessions(user)
        record(AuditAction.USER_DEACTIVATE, actor=by, request=request, obj=user,
               details={"user": user.get_username(), "role": user.role, "tokens_revoked": revoked,
                        "sessions_ended": ended})
    return user


def reactivate(*, by, request=None, user):
    """Let a deactivated user sign in again with their password; revoked tokens stay revoked."""
    _require_admin(by)
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().get(pk=user.pk)
        if user.is_active:
            return user
        user.is_active = True
        user.save(update_fields=["is_active"])
        record(AuditAction.USER_REACTIVATE, actor=by, request=request, obj=user,
               details={"user": user.get_username(), "role": user.role})
    return user


def set_language(*, user, language: str) -> None:
    """Remember the language the user reads the pages in (one of settings.LANGUAGES)."""
    if language not in dict(settings.LANGUAGES):
        raise ValueError(f"unknown language {language!r}")
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])
