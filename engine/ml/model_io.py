"""The model file format: one party's half of a trained model, without pickle.

A model half is a single JSON document (UTF-8), versioned and self-describing::

    {
      "format": "fedweb-model/1",
      "component": "hetero_lr",          # the component that trained it
      "component_version": "1.0.0",
      "role": "guest" | "host",
      "model_id": "...",                 # the same id at both parties
      "created_at": "2026-11-22T10:00:00Z",
      "params": {...},                   # the training parameters (JSON)
      "body": {...},                     # the component's own content (JSON only)
      "sample_check": {"ids": [...], "scores": [...]}   # optional, see below
    }

Numbers in ``body`` are plain JSON numbers (floats are written with ``repr``
precision, so they round-trip exactly). Arrays are lists. Nothing is ever evaluated or
unpickled when a model is loaded: ``load`` parses JSON and checks the header.

**Prediction-consistency check (seed 003).** When a half is exported, the caller may
store predictions on a sample of rows (``sample_check``); after import, the component
recomputes them on the same rows and ``check_consistency`` requires exact equality
(same float bits), so a model that does not behave identically at the new place is
refused instead of silently scoring differently.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from engine.errors import EngineError

FORMAT = "fedweb-model/1"
REQUIRED = ("format", "component", "component_version", "role", "model_id", "params", "body")


class ModelFormatError(EngineError):
    """A model file that cannot be used, with the reason."""


def _check_finite(value: Any, path: str = "body") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ModelFormatError(f"{path} holds a non-finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ModelFormatError(f"{path} has a non-text key")
            _check_finite(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, f"{path}[{index}]")


def build(*, component: str, component_version: str, role: str, model_id: str, params: dict, body: dict,
          sample_check: dict | None = None) -> dict:
    document = {
        "format": FORMAT,
        "component": component,
        "component_version": component_version,
        "role": role,
        "model_id": model_id,
        "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "params": params,
        "body": body,
    }
    if sample_check is not None:
        document["sample_check"] = sample_check
    _check_finite(document["body"])
    return document


def dumps(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, ensure_ascii=False, allow_nan=False, indent=1).encode("utf-8")


def loads(data: bytes | str, *, component: str | None = None, role: str | None = None) -> dict:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"not a model file: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFormatError(f"not a {FORMAT} model file")
    missing = [k for k in REQUIRED if k not in document]
    if missing:
        raise ModelFormatError(f"the model file lacks {', '.join(missing)}")
    if component is not None and document["component"] != component:
        raise ModelFormatError(f"this is a {document['component']} model, not {component}")
    if role is not None and document["role"] != role:
        raise ModelFormatError(f"this is the {document['role']}'s half of the model, not the {role}'s")
    if not isinstance(document["body"], dict):
        raise ModelFormatError("the model body must be an object")
    _check_finite(document["body"])
    return document


def save(document: dict, path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(dumps(document))
    return path


def write_checkpoint(directory: str | None, role: str, unit: str, number: int, document: dict) -> None:
    """``<directory>/<role>/<unit>-<number>.json`` and ``latest.json``, each written atomically
    (write, then rename), so a crash mid-write never leaves a truncated checkpoint."""
    import os
    import tempfile

    if not directory:
        return
    folder = Path(directory) / role
    folder.mkdir(parents=True, exist_ok=True)
    data = dumps(document)
    for name in (f"{unit}-{number:05d}.json", "latest.json"):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def load(path: str | Path, **expect) -> dict:
    return loads(Path(path).read_bytes(), **expect)


def check_consistency(expected: list[float], recomputed: list[float]) -> None:
    """Exact equality of sample predictions after import (seed 003)."""
    if len(expected) != len(recomputed):
        raise ModelFormatError("the consistency sample has a different number of rows")
    for index, (a, b) in enumerate(zip(expected, recomputed)):
        if float(a) != float(b):
            raise ModelFormatError(
                f"prediction {index} differs after import ({a!r} before, {b!r} after): the model is not consistent"
            )
