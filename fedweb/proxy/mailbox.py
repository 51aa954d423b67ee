"""The data-plane mailbox: where a partner's algorithm messages wait until a job pulls them.

Messages are files under ``<FEDWEB_DATA_DIR>/mailbox/<session>/``: the proxy process
writes them (chunk by chunk into a temporary file, renamed when the last chunk
arrived), and the worker process running the job reads them. A file rename is atomic,
so a reader never sees half a message. Aborts are marker files. A session's folder is
deleted when the job ends.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import time
from pathlib import Path

from django.conf import settings

from engine.errors import DuplicateMessage, FederationTimeout, PeerFailed

_SESSION = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PARTY = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def root() -> Path:
    path = Path(settings.DATA_DIR) / "mailbox"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _session_dir(session_id: str) -> Path:
    if not _SESSION.fullmatch(session_id or ""):
        raise ValueError("invalid session id")
    return root() / session_id


def _name(src: str, dst: str, key: str) -> str:
    if not (_PARTY.fullmatch(src) and _PARTY.fullmatch(dst)):
        raise ValueError("invalid party id")
    encoded = base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")
    if not encoded or len(encoded) > 200:
        raise ValueError("invalid message key")
    return f"{src}__{dst}__{encoded}"


class Writer:
    """Receives one message's chunks in order, then publishes it atomically."""

    def __init__(self, session_id: str, src: str, dst: str, key: str, chunk_count: int):
        folder = _session_dir(session_id)
        folder.mkdir(parents=True, exist_ok=True)
        self.final = folder / _name(src, dst, key)
        if self.final.exists():
            raise DuplicateMessage(f"message {key!r} from {src} was already delivered")
        self.partial = folder / (self.final.name + ".part")
        # A partner cannot fill our disk: what waits in one session is capped.
        self.room = settings.MAILBOX_SESSION_BYTES - _bytes_in(folder)
        self.handle = open(self.partial, "wb")
        self.expected = chunk_count
        self.received = 0

    def write(self, index: int, data: bytes) -> None:
        if index != self.received:
            raise ValueError(f"chunk {index} arrived, chunk {self.received} was expected")
        if index >= self.expected:
            raise ValueError("more chunks than announced")
        self.room -= len(data)
        if self.room < 0:
            raise ValueError(f"the session's mailbox is full ({settings.MAILBOX_SESSION_BYTES // (1024 * 1024)} MB waiting)")
        self.handle.write(data)
        self.received += 1

    def close(self) -> None:
        self.handle.close()
        if self.received != self.expected:
            self.partial.unlink(missing_ok=True)
            raise ValueError(f"the message ended after {self.received} of {self.expected} chunks")
        self.partial.rename(self.final)

    def discard(self) -> None:
        self.handle.close()
        self.partial.unlink(missing_ok=True)


def _bytes_in(folder: Path) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(folder) if entry.is_file())


def record_abort(session_id: str, src: str, message: str) -> None:
    folder = _session_dir(session_id)
    folder.mkdir(parents=True, exist_ok=True)
    if not _PARTY.fullmatch(src):
        raise ValueError("invalid party id")
    (folder / f"_abort__{src}").write_text(message[:1000], encoding="utf-8")


def take(session_id: str, dst: str, src: str, key: str, deadline: float, *, poll: float = 0.02) -> bytes:
    """Wait for a message (the engine transport's ``pull`` contract)."""
    folder = _session_dir(session_id)
    path = folder / _name(src, dst, key)
    wait = poll
    while True:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            pass
        else:
            path.unlink(missing_ok=True)
            return data
        raise_if_aborted(session_id, dst)
        if time.monotonic() >= deadline:
            raise FederationTimeout(key, src, None)
        time.sleep(min(wait, max(0.0, deadline - time.monotonic())))
        wait = min(wait * 1.5, 0.25)


def raise_if_aborted(session_id: str, party: str) -> None:
    """PeerFailed if anyone but ``party`` itself left an abort marker in the session."""
    folder = _session_dir(session_id)
    if folder.exists():
        for marker in folder.glob("_abort__*"):
            who = marker.name.split("__", 1)[1]
            if who != party:
                raise PeerFailed(who, marker.read_text(encoding="utf-8"))


def drop_session(session_id: str) -> None:
    shutil.rmtree(_session_dir(session_id), ignore_errors=True)
