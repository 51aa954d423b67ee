"""Create, check and revoke API tokens (``fw_<prefix>_<secret>``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from fedweb.audit.models import AuditAction
from fedweb.audit.services import record

from .models import ApiToken

TOKEN_PREFIX = "fw_"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(*, user, name: str, days: int | None = None, request=None) -> tuple[ApiToken, str]:
    """Return the token row and the full token text, which is shown once and never stored."""
    days = days or settings.API_TOKEN_DEFAULT_DAYS
    if not 1 <= days <= 366:
        raise ValueError("a token lasts between 1 and 366 days")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:100], prefix=prefix, secret_hash=_hash(secret),
            expires_at=timezone.now() + timedelta(days=days),
        )
        record(AuditAction.TOKEN_CREATE, actor=user, request=request, obj=token, details={"days": days})
    return token, f"{TOKEN_PREFIX}{prefix}_{secret}"


def authenticate_token(raw: str) -> ApiToken | None:
    if not raw.startswith(TOKEN_PREFIX):
        return None
    prefix, sep, secret = raw[len(TOKEN_PREFIX):].partition("_")
    if not sep or not prefix or not secret:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.secret_hash, _hash(secret)):
        return None
    if not token.is_usable or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def revoke_token(*, user, token: ApiToken, request=None) -> None:
    if token.user_id != user.pk and not user.is_site_admin:
        raise PermissionDenied("not your token")
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(AuditAction.TOKEN_REVOKE, actor=user, request=request, obj=token)
