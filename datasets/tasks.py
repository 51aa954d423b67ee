"""Dataset validation, run by a Celery worker.

The task takes an id, re-reads the row, and is safe to run twice (a worker lost
mid-task is redelivered because tasks are acknowledged late): it only acts on a
dataset that is still waiting or being checked, and rewrites its files from the
stored upload each time.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from celery import shared_task
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from fedweb.audit.models import AuditAction, AuditOutcome
from fedweb.audit.services import record

from . import ingest, storage
from .consumers import group_name, status_payload
from .models import Dataset, DatasetStatus

log = logging.getLogger(__name__)


def _push_status(dataset: Dataset) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group_name(dataset.pk), status_payload(dataset))
    except Exception:  # a push is a hint; the page also polls the database
        log.warning("could not push status of dataset %s", dataset.pk, exc_info=True)


def _reference(dataset: Dataset) -> Dataset | None:
    """For a later version: the newest ready version before it, whose columns it must have."""
    if dataset.version <= 1:
        return None
    return (
        Dataset.objects.alive().filter(lineage_id=dataset.lineage_id, version__lt=dataset.version, status=DatasetStatus.READY)
        .order_by("-version").first()
    )


def _read_upload(dataset: Dataset) -> None:
    """Parse the stored upload: text table, typed table by the guessed/asked columns, stats.

    A later version is read with the columns of the version before it (same id, label,
    features and types, nothing guessed) and refused when its header differs.
    """
    options = {"id_column": dataset.id_column or None, "label_column": dataset.label_column or None}
    reference = _reference(dataset)
    if reference is not None:
        schema = ingest.Schema.from_columns(reference.columns)
        options = {"id_column": schema.id_column, "label_column": schema.label_column or "", "features": schema.features,
                   "check_header": ingest.same_columns(reference.columns, reference.version)}
    try:
        result = ingest.ingest_csv(
            storage.path(dataset.storage_key, storage.SOURCE),
            storage.path(dataset.storage_key, storage.TEXT),
            typed_parquet_path=storage.path(dataset.storage_key, storage.DATA),
            encoding=dataset.encoding or None,
            delimiter=dataset.delimiter or None,
            max_rows=settings.DATASET_MAX_ROWS,
            **options,
        )
    except ingest.CsvError as exc:
        if reference is not None and exc.code == "not_a_number":
            exc.params["version"] = reference.version  # the type is the earlier version's, not a guess
        raise
    dataset.detected_encoding, dataset.detected_delimiter = result.encoding, result.delimiter
    dataset.row_count = result.row_count
    dataset.id_column = result.schema.id_column or ""
    dataset.label_column = result.schema.label_column or ""
    dataset.columns = result.columns
    dataset.report = result.report
    dataset.stats = result.stats


def _apply_columns(dataset: Dataset) -> None:
    """Re-type the already parsed text table with the columns the user chose."""
    text = storage.path(dataset.storage_key, storage.TEXT)
    data = storage.path(dataset.storage_key, storage.DATA)
    schema = ingest.Schema.from_columns(dataset.columns)
    report = ingest.apply_schema(text, data, schema)
    header, _line_column = ingest.read_text_layout(text)
    dataset.columns = schema.columns(header)
    dataset.report = {**dataset.report, **report.as_dict()}
    dataset.stats = ingest.column_stats(data, schema)


@shared_task(queue="default", acks_late=True)
def validate_dataset(dataset_id: str) -> None:
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().filter(pk=dataset_id, deleted_at__isnull=True).first()
        if dataset is None or dataset.status not in DatasetStatus.active():
            return
        dataset.start_validation()
        dataset.save()
    _push_status(dataset)

    schema_confirmed = dataset.report.get("schema_confirmed") and storage.path(dataset.storage_key, storage.TEXT).exists()
    try:
        if schema_confirmed:
            _apply_columns(dataset)
        else:
            _read_upload(dataset)
        dataset.succeed()
        outcome, details = AuditOutcome.SUCCESS, {"rows": dataset.row_count}
    except ingest.CsvError as exc:
        dataset.fail(exc.code, params=exc.params, line=exc.line, column=exc.column)
        outcome, details = AuditOutcome.FAILURE, {"code": exc.code, "line": exc.line, "column": exc.column}
    except Exception:
        log.exception("validation of dataset %s crashed", dataset_id)
        # Worded when shown, like the file's own problems: this worker's language is not the reader's.
        dataset.fail("internal_error")
        outcome, details = AuditOutcome.FAILURE, {"code": "internal_error"}

    with transaction.atomic():
        current = Dataset.objects.select_for_update().get(pk=dataset_id)
        if current.deleted_at is not None:
            return
        dataset.save()
        record(AuditAction.DATASET_VALIDATE, actor_name="system", obj=dataset, outcome=outcome, details=details)
    _push_status(dataset)
