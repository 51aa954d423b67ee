"""Datasets uploaded to this site and the grants that let other users use them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .ingest.messages import describe, english


class DatasetStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Waiting to be checked")
    VALIDATING = "validating", _("Being checked")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")

    @classmethod
    def active(cls) -> set[str]:
        return {cls.UPLOADED, cls.VALIDATING}

    @classmethod
    def terminal(cls) -> set[str]:
        return {cls.READY, cls.FAILED}


class ColumnType(models.TextChoices):
    NUMERIC = "numeric", _("Number")
    CATEGORICAL = "categorical", _("Category")


class DatasetQuerySet(models.QuerySet):
    def alive(self):
        return self.filter(deleted_at__isnull=True)

    def visible_to(self, user):
        """What ``user`` may see: admins everything, others their own and granted datasets.

        A grant covers every version of the dataset it was given on (see ``Dataset.lineage``).
        """
        qs = self.alive()
        if user is None or not user.is_authenticated or not user.is_active:
            return qs.none()
        if user.is_site_admin:
            return qs
        now = timezone.now()
        granted = DatasetGrant.objects.filter(user=user, revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )
        return qs.filter(Q(owner=user) | Q(lineage_id__in=granted.values("dataset__lineage_id")))

    def newest_ready(self):
        """Of each dataset, its newest ready version (what a project should use)."""
        newer = Dataset.objects.alive().filter(
            lineage_id=OuterRef("lineage_id"), status=DatasetStatus.READY, version__gt=OuterRef("version")
        )
        return self.filter(status=DatasetStatus.READY).exclude(Exists(newer))

    def current(self):
        """What stands for each dataset in lists: its newest ready version, or its newest version
        when none is ready (the query form of ``services.current_version``)."""
        siblings = Dataset.objects.alive().filter(lineage_id=OuterRef("lineage_id"))
        newer = siblings.filter(version__gt=OuterRef("version"))
        newer_ready = newer.filter(status=DatasetStatus.READY)
        any_ready = siblings.filter(status=DatasetStatus.READY)
        return self.filter(
            (Q(status=DatasetStatus.READY) & ~Exists(newer_ready)) | (~Exists(any_ready) & ~Exists(newer))
        )


class Dataset(models.Model):
    """One uploaded file and what was found in it: one *version* of a dataset.

    A dataset refreshed with a new file gets a new row per version, each with its own
    file, checks, statistics and status, so everything that names a table by its id (jobs,
    PSI sessions, the partner's copy of an authorisation, serving tables) keeps reading the
    version it was given. ``lineage`` is the first version (itself for the first one);
    the owner, the name and the grants belong to the lineage.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    lineage = models.ForeignKey("self", on_delete=models.PROTECT, related_name="versions", null=True, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="datasets")
    # Who uploaded this version's file: the owner, or a site admin for them.
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    original_filename = models.CharField(max_length=255, blank=True)  # a label only, never a path
    storage_key = models.CharField(max_length=32, unique=True, editable=False)
    size_bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)

    status = models.CharField(max_length=16, choices=DatasetStatus.choices, default=DatasetStatus.UPLOADED)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    error_line = models.PositiveIntegerField(null=True, blank=True)
    error_column = models.CharField(max_length=255, blank=True)
    # What the message says (line, counts, delimiter...), so it is worded in the
    # reader's language when shown (see ``error_text``). None on datasets that failed
    # before these were kept: they show ``error_message``, the English kept for logs.
    error_params = models.JSONField(null=True, blank=True)

    # What the user asked for (blank = detect) and what was found.
    encoding = models.CharField(max_length=40, blank=True)
    delimiter = models.CharField(max_length=4, blank=True)
    detected_encoding = models.CharField(max_length=40, blank=True)
    detected_delimiter = models.CharField(max_length=4, blank=True)

    id_column = models.CharField(max_length=255, blank=True)
    label_column = models.CharField(max_length=255, blank=True)
    # [{"name": ..., "role": "id"|"label"|"feature"|"ignored", "type": "numeric"|"categorical"|"text"}]
    columns = models.JSONField(default=list, blank=True)
    row_count = models.PositiveBigIntegerField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True)  # e.g. duplicated ids
    stats = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = DatasetQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["lineage", "version"], name="one_number_per_version")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if self.lineage_id is None:  # a first version is its own lineage
            self.lineage_id = self.id
        if self.uploaded_by_id is None and self.version == 1:
            self.uploaded_by_id = self.owner_id
        super().save(*args, **kwargs)

    @property
    def is_ready(self) -> bool:
        return self.status == DatasetStatus.READY

    @property
    def is_busy(self) -> bool:
        return self.status in DatasetStatus.active()

    @property
    def error_text(self) -> str:
        """The problem in the active language (the request's, when a page or the API shows it)."""
        return describe(self.error_code, self.error_params, fallback=self.error_message)

    @property
    def feature_columns(self) -> list[dict]:
        return [c for c in self.columns if c.get("role") == "feature"]

    def start_validation(self) -> None:
        self.status = DatasetStatus.VALIDATING
        self._clear_error()

    def fail(self, code: str, *, params: dict | None = None, line: int | None = None, column: str | None = None) -> None:
        """``params`` let ``error_text`` word the problem in the reader's language; ``error_message``
        keeps it in English, for logs and older clients."""
        self.status = DatasetStatus.FAILED
        params = dict(params or {})
        self.error_code, self.error_message, self.error_params = code, english(code, params), params
        self.error_line, self.error_column = line, (column or "")[:255]
        self.validated_at = timezone.now()

    def succeed(self) -> None:
        self.status = DatasetStatus.READY
        self._clear_error()
        self.validated_at = timezone.now()

    def _clear_error(self) -> None:
        self.error_code = self.error_message = self.error_column = ""
        self.error_line = self.error_params = None


class DatasetGrantQuerySet(models.QuerySet):
    def active(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class DatasetGrant(models.Model):
    """An admin's permission for a user to use a dataset they do not own."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dataset_grants")
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = DatasetGrantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one live grant per user and dataset; revoked ones stay as history.
            models.UniqueConstraint(
                fields=["dataset", "user"], condition=Q(revoked_at__isnull=True), name="one_live_grant_per_user"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} may use {self.dataset}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())
