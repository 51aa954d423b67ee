"""Cooperation tokens: 32 random bytes per project, encrypted at rest.

The encryption key is derived from the site's secret key, so a copy of the database
alone does not reveal the tokens.
"""

from __future__ import annotations

import base64
import os
from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.utils import timezone

TOKEN_BYTES = 32
# After a rotation the previous token is still accepted this long, so requests already
# in flight (or events queued before the partner learned the new token) are not lost.
ROTATION_GRACE = timedelta(minutes=10)


def _fernet() -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"fedweb-project-token", info=b"at-rest").derive(
        settings.SECRET_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def new_token() -> bytes:
    return os.urandom(TOKEN_BYTES)


def seal(token: bytes) -> bytes:
    return _fernet().encrypt(token)


def unseal(sealed: bytes | memoryview | None) -> bytes | None:
    if sealed is None:
        return None
    try:
        return _fernet().decrypt(bytes(sealed))
    except InvalidToken:
        raise RuntimeError("a project token cannot be decrypted: was DJANGO_SECRET_KEY changed?") from None


def set_token(project, token: bytes, version: int) -> None:
    """Install a new token, keeping the old one valid for the grace period."""
    if project.token_encrypted:
        project.previous_token_encrypted = project.token_encrypted
        project.previous_token_valid_until = timezone.now() + ROTATION_GRACE
    project.token_encrypted = seal(token)
    project.token_version = version


def tokens_for(project, version: int) -> bytes | None:
    """The token a request claims to use, if it is still valid."""
    if version == project.token_version:
        return unseal(project.token_encrypted)
    if (
        version == project.token_version - 1
        and project.previous_token_encrypted
        and project.previous_token_valid_until
        and project.previous_token_valid_until > timezone.now()
    ):
        return unseal(project.previous_token_encrypted)
    return None


def b64(token: bytes) -> str:
    return base64.b64encode(token).decode()


def from_b64(text: str) -> bytes:
    token = base64.b64decode(text.encode(), validate=True)
    if len(token) != TOKEN_BYTES:
        raise ValueError("a cooperation token is 32 bytes")
    return token
