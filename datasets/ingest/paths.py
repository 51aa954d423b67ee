"""Server-side file names and display labels: the client's file name is never a path."""

from __future__ import annotations

import re
import unicodedata
import uuid

_SUFFIX = re.compile(r"\.[a-z0-9]{1,10}")


def storage_name(suffix: str = "") -> str:
    """A new server-generated file name: 32 hex characters (uuid4), plus an optional
    fixed suffix such as ".csv" or ".parquet" chosen by the server."""
    if suffix and not _SUFFIX.fullmatch(suffix):
        raise ValueError("suffix must look like '.csv'")
    return uuid.uuid4().hex + suffix


def safe_label(client_filename: str | None, max_length: int = 100, default: str = "dataset") -> str:
    """A display label from the name the browser sent; never use it as a path.

    Keeps the base name only (after the last / or \\), removes control and format
    characters (including right-to-left overrides), normalises to NFC, collapses
    runs of blank space, and cuts the name to ``max_length`` characters, keeping the
    extension when it can. An empty result becomes ``default``.
    """
    name = unicodedata.normalize("NFC", str(client_filename or ""))
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(
        " " if ch in "\t\r\n" else ch
        for ch in name
        if ch in "\t\r\n" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
    )
    name = re.sub(r"\s+", " ", name).strip()
    if name in ("", ".", ".."):
        return default
    if len(name) > max_length:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and 0 < len(ext) <= 10 and max_length > len(ext) + 2:
            name = stem[: max_length - len(ext) - 2].rstrip() + "…." + ext
        else:
            name = name[: max_length - 1].rstrip() + "…"
    return name
