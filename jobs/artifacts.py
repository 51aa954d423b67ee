"""The artifact store: job outputs as files named by the SHA-256 of their bytes.

``<ARTIFACT_DIR>/artifacts/<first two hex digits>/<sha256>.<ext>``. A file is written
under a temporary name and renamed into place only when complete, and its digest is
checked when read, so nothing half-written or changed on disk is ever taken for a
finished output (a reused node whose artifact is gone or altered runs again).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings

from .models import Artifact

EXTENSIONS = {"table": "parquet", "model": "json", "metrics": "json"}
_DIGEST = re.compile(r"[0-9a-f]{64}")


class ArtifactMissing(Exception):
    """The artifact's file is gone or does not match its digest."""


def root() -> Path:
    return Path(settings.ARTIFACT_DIR) / "artifacts"


def path_of(artifact_id: str, kind: str) -> Path:
    if not _DIGEST.fullmatch(artifact_id) or kind not in EXTENSIONS:
        raise ValueError("invalid artifact id or kind")
    return root() / artifact_id[:2] / f"{artifact_id}.{EXTENSIONS[kind]}"


def _encode(kind: str, value: Any) -> tuple[bytes, int | None]:
    if kind == "table":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = value if isinstance(value, pa.Table) else pa.Table.from_pandas(value, preserve_index=False)
        with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as buffer:
            pq.write_table(table, buffer, compression="zstd")
            buffer.seek(0)
            return buffer.read(), table.num_rows
    if kind == "model":
        from engine.ml import model_io

        return model_io.dumps(value), None
    return json.dumps(value, sort_keys=True, default=_plain).encode(), None


def _plain(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in metrics")


def store(kind: str, value: Any) -> Artifact:
    """Write ``value`` (a table, model or metrics dict) and return its artifact row."""
    data, rows = _encode(kind, value)
    digest = hashlib.sha256(data).hexdigest()
    target = path_of(digest, kind)
    if not _intact(target, digest):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    artifact, _created = Artifact.objects.get_or_create(id=digest, defaults={"kind": kind, "size_bytes": len(data), "rows": rows})
    return artifact


def _intact(path: Path, digest: str) -> bool:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == digest
    except FileNotFoundError:
        return False


def _verified(artifact_id: str) -> tuple[Artifact, bytes]:
    """The artifact's row and bytes, or ArtifactMissing saying what is wrong."""
    artifact = Artifact.objects.filter(pk=artifact_id).first()
    if artifact is None:
        raise ArtifactMissing(f"artifact {artifact_id[:12]} is not known here")
    try:
        data = path_of(artifact.id, artifact.kind).read_bytes()
    except FileNotFoundError:
        raise ArtifactMissing(f"artifact {artifact_id[:12]} is missing from the artifact store") from None
    if hashlib.sha256(data).hexdigest() != artifact.id:
        raise ArtifactMissing(f"artifact {artifact_id[:12]} was changed on disk")
    return artifact, data


def exists(artifact_id: str) -> bool:
    """Whether the artifact's file is on disk and still has its content."""
    try:
        _verified(artifact_id)
    except ArtifactMissing:
        return False
    return True


def load(artifact_id: str) -> Any:
    """The artifact's value: a DataFrame, a model dict or a metrics dict."""
    artifact, data = _verified(artifact_id)
    if artifact.kind == "table":
        import io

        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data)).to_pandas()
    if artifact.kind == "model":
        from engine.ml import model_io

        return model_io.loads(data)
    return json.loads(data)
