"""What users do with datasets. Views (browser and API) call these; nothing else
changes datasets or grants.

Visibility rule, applied everywhere: a site admin sees every dataset; anyone else
sees the datasets they own or hold a live grant for. A dataset someone may not see
is answered exactly like one that does not exist (404).
"""

from __future__ import annotations

import codecs
import hashlib
import re
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from fedweb.api.errors import ServiceError
from fedweb.audit.models import AuditAction
from fedweb.audit.services import record

from . import storage
from .ingest import Schema, safe_label
from .models import ColumnType, Dataset, DatasetGrant, DatasetStatus

# Lazy: the words are read in the language of each request, not of the process at import.
DELIMITERS = {",": gettext_lazy("comma"), ";": gettext_lazy("semicolon"), "\t": gettext_lazy("tab"),
              "|": gettext_lazy("vertical bar")}
MAX_TAGS = 20


# --- Access -------------------------------------------------------------------------

def visible_datasets(user):
    return Dataset.objects.visible_to(user).select_related("owner")


def get_visible(user, pk) -> Dataset:
    dataset = visible_datasets(user).filter(pk=pk).first()
    if dataset is None:
        raise Http404("no such dataset")
    return dataset


def versions_of(dataset: Dataset):
    """Every version of ``dataset`` that is not deleted, oldest first."""
    return Dataset.objects.alive().filter(lineage_id=dataset.lineage_id).select_related("uploaded_by").order_by("version")


def newest_ready_version(dataset: Dataset) -> Dataset | None:
    return versions_of(dataset).filter(status=DatasetStatus.READY).last()


def current_version(versions: list[Dataset]) -> Dataset:
    """What stands for a dataset in lists: its newest ready version, else its newest one."""
    ready = [v for v in versions if v.is_ready]
    return (ready or versions)[-1]


def dataset_rows(user, query: str = "") -> list[dict]:
    """The datasets list: one row per dataset (its current version), newest upload first.

    ``newer``: a version newer than the current one that is not ready (being checked or
    failed), so a refresh that went wrong is not hidden behind the version that works.
    """
    lineages: dict = {}
    for version in visible_datasets(user).order_by("version"):
        lineages.setdefault(version.lineage_id, []).append(version)
    rows = []
    for versions in lineages.values():
        current = current_version(versions)
        if query and query.lower() not in current.name.lower():
            continue
        rows.append({"dataset": current, "count": len(versions), "newer": versions[-1] if versions[-1] is not current else None,
                     "last_upload": versions[-1].created_at})
    rows.sort(key=lambda row: row["last_upload"], reverse=True)
    return rows


def count_datasets(user) -> int:
    """How many datasets ``user`` sees, each counted once whatever its number of versions."""
    return visible_datasets(user).values("lineage_id").distinct().count()


def same_name(user, dataset: Dataset) -> list[Dataset]:
    """Other datasets ``user`` sees under the same name (case and outer spaces aside), so two
    can be told apart by owner and date before one is used for the other."""
    others = visible_datasets(user).filter(name__iexact=dataset.name.strip()).exclude(lineage_id=dataset.lineage_id)
    lineages: dict = {}
    for version in others.order_by("version"):
        lineages.setdefault(version.lineage_id, []).append(version)
    return sorted((current_version(v) for v in lineages.values()), key=lambda d: d.created_at)


def projects_using(user, dataset: Dataset) -> list:
    """The live authorisations of any version of this dataset in the projects ``user`` may see."""
    from projects.models import ProjectTable
    from projects.services import visible_projects

    return list(
        ProjectTable.objects.live().filter(dataset__lineage_id=dataset.lineage_id, project__in=visible_projects(user))
        .select_related("project", "dataset").order_by("project__name")
    )


def can_manage(user, dataset: Dataset) -> bool:
    """Owners and site admins rename, re-type, download, delete; grantees only use."""
    return user.is_site_admin or (dataset.owner_id == user.pk and user.can_write)


def _require_manage(user, dataset: Dataset) -> None:
    if not can_manage(user, dataset):
        raise PermissionDenied(_("Only the owner of this dataset or a site admin can do this."))


# --- Upload and validation -----------------------------------------------------------

def _check_options(encoding: str, delimiter: str) -> None:
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ServiceError(
                _("“%(enc)s” is not an encoding this site knows. Try utf-8, gb18030 or latin-1.") % {"enc": encoding},
                code="unknown_encoding",
                details={"encoding": [_("Unknown encoding.")]},
            ) from None
    if delimiter and delimiter not in DELIMITERS:
        raise ServiceError(
            _("The separator must be a comma, semicolon, tab or vertical bar."),
            code="bad_delimiter",
            details={"delimiter": [_("Unsupported separator.")]},
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _store(uploaded_file) -> tuple[str, str, Path]:
    """Keep an uploaded file under a server-generated key: (key, the name it came with, its path)."""
    label = safe_label(getattr(uploaded_file, "name", "") or "upload.csv")
    key = storage.new_key()
    if hasattr(uploaded_file, "temporary_file_path"):
        # Rename first: closing a temporary upload deletes whatever is at its path.
        stored = storage.store_upload(key, uploaded_file.temporary_file_path())
        uploaded_file.close()
    else:  # small in-memory files (tests, management commands)
        stored = storage.store_bytes(key, uploaded_file.read())
    return key, label, stored


def _file_fields(key: str, label: str, stored: Path) -> dict:
    return {"original_filename": label, "storage_key": key, "size_bytes": stored.stat().st_size, "sha256": _sha256(stored)}


def _record_upload(user, request, dataset: Dataset) -> None:
    details = {"file": dataset.original_filename, "bytes": dataset.size_bytes, "sha256": dataset.sha256}
    if dataset.version > 1:
        details.update(version=dataset.version, first_version=str(dataset.lineage_id))
    record(AuditAction.DATASET_UPLOAD, actor=user, request=request, obj=dataset, details=details)


def upload(
    *,
    user,
    uploaded_file,
    name: str = "",
    description: str = "",
    encoding: str = "",
    delimiter: str = "",
    id_column: str = "",
    label_column: str = "",
    request=None,
) -> Dataset:
    """Store an uploaded CSV under a server-generated name and queue its validation."""
    if not user.can_write:
        raise PermissionDenied(_("Viewers cannot upload datasets."))
    _check_options(encoding, delimiter)
    key, label, stored = _store(uploaded_file)
    with transaction.atomic():
        dataset = Dataset.objects.create(
            owner=user,
            uploaded_by=user,
            name=(name or "").strip()[:200] or Path(label).stem or label,
            description=description or "",
            encoding=encoding or "",
            delimiter=delimiter or "",
            id_column=id_column or "",
            label_column=label_column or "",
            **_file_fields(key, label, stored),
        )
        _record_upload(user, request, dataset)
        _queue_validation(dataset)
    return dataset


def upload_version(*, user, dataset: Dataset, uploaded_file, encoding: str = "", delimiter: str = "", request=None) -> Dataset:
    """A new file for a dataset: its next version, checked like any upload and, on top, against
    the newest ready version (same id, label and columns with the same types; see tasks.py).

    Projects keep the version they were authorised with until an admin moves them. The
    owner and the name stay the lineage's; encoding and separator default to the ones
    asked for last time.
    """
    _require_manage(user, dataset)
    _check_options(encoding, delimiter)
    _version_base(dataset)  # refuse before storing anything
    key, label, stored = _store(uploaded_file)
    try:
        with transaction.atomic():
            # Locking the first version serialises the numbering of its versions.
            Dataset.objects.select_for_update().filter(pk=dataset.lineage_id).first()
            base = _version_base(dataset)
            number = 1 + max(Dataset.objects.filter(lineage_id=dataset.lineage_id).values_list("version", flat=True))
            new = Dataset.objects.create(
                lineage_id=dataset.lineage_id, version=number, owner_id=base.owner_id, uploaded_by=user,
                name=base.name, description=base.description, tags=list(base.tags),
                encoding=encoding or base.encoding, delimiter=delimiter or base.delimiter,
                id_column=base.id_column, label_column=base.label_column,
                **_file_fields(key, label, stored),
            )
            _record_upload(user, request, new)
            _queue_validation(new)
    except BaseException:
        if not Dataset.objects.filter(storage_key=key).exists():  # nothing refers to the file
            storage.remove(key)
        raise
    return new


def _version_base(dataset: Dataset) -> Dataset:
    """The version a new one is compared with: the newest ready one. Refuses while one is checked."""
    versions = list(versions_of(dataset))
    busy = [v for v in versions if v.is_busy]
    if busy:
        raise ServiceError(
            _("Version %(n)s is still being checked. Upload the next version when it is done.") % {"n": busy[-1].version},
            code="busy", status_code=409,
        )
    ready = [v for v in versions if v.is_ready]
    if not ready:
        raise ServiceError(
            _("No version of this dataset is ready, so a new file has nothing to be compared with. Read this file "
              "again or upload the new file as a new dataset."),
            code="not_ready", status_code=409,
        )
    return ready[-1]


def _queue_validation(dataset: Dataset) -> None:
    from .tasks import validate_dataset

    dataset_id = str(dataset.pk)
    transaction.on_commit(lambda: validate_dataset.delay(dataset_id))


def change_schema(*, user, dataset: Dataset, id_column: str, label_column: str, features: dict[str, str], request=None) -> Dataset:
    """Re-type a dataset: choose the id, the label and the features with their types."""
    _require_manage(user, dataset)
    if dataset.is_busy:
        raise ServiceError(_("The dataset is still being checked. Try again when it is done."), code="busy", status_code=409)
    newest = versions_of(dataset).last()
    if newest is not None and newest.version > dataset.version:
        # A later version was checked against these columns; changing them here would
        # leave the versions disagreeing. The newest version's columns can change.
        raise ServiceError(
            _("This is version %(this)s; version %(newest)s is newer. Change the columns of the newest version.")
            % {"this": dataset.version, "newest": newest.version},
            code="not_newest", status_code=409,
        )
    if not dataset.detected_encoding:
        raise ServiceError(_("This file could not be read, so its columns cannot be chosen."), code="not_readable")
    known = {c["name"] for c in dataset.columns}
    problems = {}
    if id_column not in known:
        problems["id_column"] = [_("Choose one of the file's columns.")]
    if label_column and label_column not in known:
        problems["label_column"] = [_("Choose one of the file's columns, or none.")]
    if label_column and label_column == id_column:
        problems["label_column"] = [_("The label cannot also be the id column.")]
    for column, kind in features.items():
        if column not in known:
            problems.setdefault("features", []).append(_("“%(c)s” is not a column of this file.") % {"c": column})
        elif column in (id_column, label_column):
            problems.setdefault("features", []).append(_("“%(c)s” is already the id or label column.") % {"c": column})
        elif kind not in ColumnType.values:
            problems.setdefault("features", []).append(_("“%(c)s” must be a number or a category.") % {"c": column})
    if problems:
        raise ServiceError(_("Some of the column choices are not valid."), code="invalid", details=problems)
    with transaction.atomic():
        dataset.id_column, dataset.label_column = id_column, label_column or ""
        header = [c["name"] for c in dataset.columns]
        dataset.columns = Schema(id_column, label_column or None, dict(features)).columns(header)
        dataset.report = {**dataset.report, "schema_confirmed": True}
        dataset.start_validation()
        dataset.save()
        record(
            AuditAction.DATASET_SCHEMA, actor=user, request=request, obj=dataset,
            details={"id_column": id_column, "label_column": label_column, "features": features},
        )
        _queue_validation(dataset)
    return dataset


def revalidate(*, user, dataset: Dataset, encoding: str = "", delimiter: str = "", request=None) -> Dataset:
    """Read the stored file again, e.g. with the encoding the user now names."""
    _require_manage(user, dataset)
    if dataset.is_busy:
        raise ServiceError(_("The dataset is still being checked. Try again when it is done."), code="busy", status_code=409)
    _check_options(encoding, delimiter)
    with transaction.atomic():
        dataset.encoding, dataset.delimiter = encoding, delimiter
        dataset.detected_encoding = dataset.detected_delimiter = ""
        dataset.columns, dataset.report, dataset.stats, dataset.row_count = [], {}, {}, None
        dataset.start_validation()
        dataset.save()
        _queue_validation(dataset)
    return dataset


# --- Metadata, deletion ------------------------------------------------------------

def clean_tags(tags) -> list[str]:
    if isinstance(tags, str):
        tags = tags.split(",")
    cleaned = []
    for tag in tags or []:
        tag = str(tag).strip()[:40]
        if tag and tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise ServiceError(_("A dataset can have at most %(n)d tags.") % {"n": MAX_TAGS}, details={"tags": [_("Too many tags.")]})
    return cleaned


def update_metadata(*, user, dataset: Dataset, request=None, **changes) -> Dataset:
    _require_manage(user, dataset)
    before = {k: getattr(dataset, k) for k in ("name", "description", "tags")}
    if "name" in changes:
        name = (changes["name"] or "").strip()
        if not name:
            raise ServiceError(_("A dataset needs a name."), details={"name": [_("This field may not be blank.")]})
        dataset.name = name[:200]
    if "description" in changes:
        dataset.description = changes["description"] or ""
    if "tags" in changes:
        dataset.tags = clean_tags(changes["tags"])
    after = {k: getattr(dataset, k) for k in ("name", "description", "tags")}
    with transaction.atomic():
        dataset.save(update_fields=["name", "description", "tags", "updated_at"])
        # The name, description and tags are the dataset's, whichever version's page changed them.
        versions_of(dataset).exclude(pk=dataset.pk).update(
            name=dataset.name, description=dataset.description, tags=dataset.tags, updated_at=timezone.now()
        )
        record(AuditAction.DATASET_UPDATE, actor=user, request=request, obj=dataset, details={"before": before, "after": after})
    return dataset


def delete(*, user, dataset: Dataset, request=None) -> None:
    """Soft delete of the dataset with all its versions: the rows and files stay for the audit
    trail; nobody sees them any more."""
    _require_manage(user, dataset)
    now = timezone.now()
    with transaction.atomic():
        versions = list(versions_of(dataset))
        Dataset.objects.filter(pk__in=[v.pk for v in versions]).update(deleted_at=now, deleted_by=user, updated_at=now)
        dataset.deleted_at, dataset.deleted_by = now, user
        DatasetGrant.objects.filter(dataset_id=dataset.lineage_id, revoked_at__isnull=True).update(revoked_at=now, revoked_by=user)
        record(AuditAction.DATASET_DELETE, actor=user, request=request, obj=dataset,
               details={"versions": [v.version for v in versions]} if len(versions) > 1 else None)


# --- Grants ----------------------------------------------------------------------

def _require_admin(user) -> None:
    if not user.is_site_admin:
        raise PermissionDenied(_("Only site admins grant access to datasets."))


def grants_of(dataset: Dataset):
    """The grants of a dataset, current and past: kept on its first version, they cover every version."""
    return DatasetGrant.objects.filter(dataset_id=dataset.lineage_id).select_related("user", "granted_by")


def grant(*, by, dataset: Dataset, user, expires_at: datetime | None = None, request=None) -> DatasetGrant:
    """Let ``user`` use ``dataset``, every version of it (the grant is kept on the first one)."""
    _require_admin(by)
    if dataset.status == DatasetStatus.FAILED:
        raise ServiceError(
            _("This file could not be used, so there is nothing to give access to yet. Fix the file first."),
            code="not_ready", status_code=409,
        )
    dataset = dataset.lineage if dataset.lineage_id != dataset.pk else dataset
    if expires_at is not None and expires_at <= timezone.now():
        raise ServiceError(_("The end date must be in the future."), details={"expires_at": [_("Must be in the future.")]})
    if user.pk == dataset.owner_id:
        raise ServiceError(_("The owner can already use this dataset."), details={"user": [_("This user owns the dataset.")]})
    if not user.is_active:
        raise ServiceError(_("This user is disabled."), details={"user": [_("Disabled user.")]})
    with transaction.atomic():
        # One live grant per user: granting again replaces it (e.g. to change the end date).
        for old in DatasetGrant.objects.select_for_update().filter(dataset=dataset, user=user, revoked_at__isnull=True):
            old.revoked_at, old.revoked_by = timezone.now(), by
            old.save(update_fields=["revoked_at", "revoked_by"])
        new = DatasetGrant.objects.create(dataset=dataset, user=user, granted_by=by, expires_at=expires_at)
        record(
            AuditAction.GRANT, actor=by, request=request, obj=dataset,
            details={"user": user.get_username(), "grant": new.pk, "expires_at": expires_at.isoformat() if expires_at else None},
        )
    return new


def revoke(*, by, grant: DatasetGrant, request=None) -> None:
    _require_admin(by)
    if grant.revoked_at is not None:
        return
    with transaction.atomic():
        grant.revoked_at, grant.revoked_by = timezone.now(), by
        grant.save(update_fields=["revoked_at", "revoked_by"])
        record(
            AuditAction.REVOKE, actor=by, request=request, obj=grant.dataset,
            details={"user": grant.user.get_username(), "grant": grant.pk},
        )


# --- Reading ---------------------------------------------------------------------

def _require_ready(dataset: Dataset) -> Path:
    data = storage.path(dataset.storage_key, storage.DATA)
    if not dataset.is_ready or not data.exists():
        raise ServiceError(_("The dataset is not ready yet."), code="not_ready", status_code=409)
    return data


def preview(*, user, dataset: Dataset, rows: int = 20) -> dict:
    from .ingest import preview as read_preview

    return read_preview(_require_ready(dataset), n=max(1, min(rows, 200)))


def download(*, user, dataset: Dataset, request=None):
    """Return (file name, iterator of CSV bytes) for the owner or an admin; audited.

    The export is the text table, so every value reads exactly as uploaded (ids like
    ``0012345`` and ``NA`` included); text cells that look like spreadsheet formulas
    are neutralised, numbers in numeric columns are left as numbers.
    """
    from .ingest import iter_csv_bytes

    _require_manage(user, dataset)
    _require_ready(dataset)
    text = storage.path(dataset.storage_key, storage.TEXT)
    numeric = [c["name"] for c in dataset.columns if c.get("type") == ColumnType.NUMERIC]
    record(AuditAction.DATASET_DOWNLOAD, actor=user, request=request, obj=dataset)
    return download_filename(dataset.original_filename), iter_csv_bytes(text, numeric_columns=numeric)


# What a Content-Disposition header is made of (quotes, the ``charset''name`` of
# ``filename*``, parameter separators): even escaped, a lax parser could read them
# as the end of the name and the start of another parameter.
_HEADER_PUNCTUATION = re.compile(r"[\"'\\;]")


def download_filename(original: str | None) -> str:
    """A safe name for a CSV download, from the name the file was uploaded under.

    ``safe_label`` keeps the base name only and drops control and format characters
    (right-to-left overrides included); on top of that header punctuation goes and
    the name always ends in ``.csv``. Other Unicode stays (``客户 名单.csv``). Views
    still build the header with ``content_disposition_header``.
    """
    stem = Path(safe_label(original, default="dataset")).stem
    stem = re.sub(r"\s+", " ", _HEADER_PUNCTUATION.sub("", stem)).strip(" .")
    return (stem or "dataset") + ".csv"


def max_upload_mb() -> int:
    return settings.DATASET_MAX_UPLOAD_BYTES // (1024 * 1024)
