"""Cooperation tokens: 32 random bytes per project, encrypted at rest.

Version 1 is made by the inviting site and travels in the invitation, so that every
later message about the project, the answer included, is MAC'd: the invitation to a
project id the receiver has never seen is the only request without one. The invited
site issues version 2 when it accepts (so the working token comes from both sides'
decisions), and either side's admin can rotate it later.

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
# After the partner has the new token, the previous one is still accepted this long, so
# requests already in flight are not lost.
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


def set_token(project, token: bytes, version: int, *, issued_here: bool) -> None:
    """Install a new token; the old one stays valid for a while.

    The side that ISSUED the new token (an acceptance, a rotation) keeps the old one
    until the partner has received the new one (``confirm_delivered``): the event
    carrying it is MAC'd under the old token, and the partner keeps using the old token
    until then, however long it is down. The side that RECEIVED it keeps the old one
    for ``ROTATION_GRACE``, for requests already in flight.
    """
    if project.token_encrypted:
        project.previous_token_encrypted = project.token_encrypted
        project.previous_token_valid_until = None if issued_here else timezone.now() + ROTATION_GRACE
    project.token_encrypted = seal(token)
    project.token_version = version


def awaiting_confirmation(project) -> bool:
    """Whether a token we issued has not reached the partner yet."""
    return bool(project.previous_token_encrypted) and project.previous_token_valid_until is None


def confirm_delivered(project) -> None:
    """The partner acknowledged the event carrying our new token: start the old one's grace."""
    if awaiting_confirmation(project):
        project.previous_token_valid_until = timezone.now() + ROTATION_GRACE
        project.save(update_fields=["previous_token_valid_until"])


def tokens_for(project, version: int) -> bytes | None:
    """The token a request claims to use, if it is still valid."""
    if version == 0:
        return None
    if version == project.token_version:
        return unseal(project.token_encrypted)
    if (
        version == project.token_version - 1
        and project.previous_token_encrypted
        and (project.previous_token_valid_until is None or project.previous_token_valid_until > timezone.now())
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
