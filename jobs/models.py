"""Jobs, their tasks, the artifacts they produce and the models they train.

A **job** is one DAG of components inside a project (``spec``, see ``jobs/spec.py``),
with the same id at both sites. Each site has one **task** per node it plays a role in
(``site="ours"``) and a mirror of the partner's (``site="partner"``), kept up to date
by the partner's ``job.task`` events, so either site shows both halves. Outputs are
**artifacts**, stored once by their content's SHA-256.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for the partner to accept")
    APPROVAL = "approval", _("Waiting for an admin's approval")
    REFUSED = "refused", _("Refused")
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused for a decision")
    CANCELLING = "cancelling", _("Stopping")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")

    @classmethod
    def active(cls) -> set[str]:
        return {cls.PENDING, cls.APPROVAL, cls.RUNNING, cls.PAUSED, cls.CANCELLING}

    @classmethod
    def terminal(cls) -> set[str]:
        return {cls.REFUSED, cls.SUCCEEDED, cls.FAILED, cls.CANCELLED}

    @classmethod
    def resumable(cls) -> set[str]:
        return {cls.FAILED, cls.CANCELLED}


class TaskStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting for its inputs")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    REUSED = "reused", _("Reused from an earlier job")

    @classmethod
    def active(cls) -> set[str]:
        return {cls.WAITING, cls.QUEUED, cls.RUNNING}

    @classmethod
    def terminal(cls) -> set[str]:
        return {cls.SUCCEEDED, cls.FAILED, cls.CANCELLED, cls.REUSED}

    @classmethod
    def done(cls) -> set[str]:
        """Finished with outputs that downstream nodes can use."""
        return {cls.SUCCEEDED, cls.REUSED}


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)  # the same at both sites
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="jobs")
    name = models.CharField(_("name"), max_length=200)
    template = models.CharField(max_length=64, blank=True)  # which template built the spec, if any
    spec = models.JSONField()
    initiator = models.CharField(max_length=63)  # party id of the site that created it
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by_name = models.CharField(max_length=150, blank=True)  # the initiator's user, as the partner saw it
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")
    sweep = models.ForeignKey("Sweep", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True)
    attempt = models.PositiveIntegerField(default=1)  # grows with each resume
    estimate_seconds = models.FloatField(null=True, blank=True)  # at creation, from jobs/estimate.py
    error = models.TextField(blank=True)  # plain words, the same at both sites
    failed_party = models.CharField(max_length=63, blank=True)
    failed_node = models.CharField(max_length=32, blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The admin who refused it, at whichever site; "" when a site's own checks refused it.
    refused_by = models.CharField(max_length=150, blank=True)
    # Gates (``pause_after`` in the spec): who decides there, as both sites agreed when the job was
    # accepted; the gated nodes someone chose to go on after; and the one the job waits at now.
    gate_decider = models.CharField(max_length=16, default="initiator")
    # The model a training job makes: its name (that of the job it was first tuned from) and its
    # version number, both set by the initiator and sent with the job, so both sites agree.
    model_name = models.CharField(max_length=200, blank=True)
    model_number = models.PositiveIntegerField(null=True, blank=True)
    gates_passed = models.JSONField(default=list, blank=True)
    paused_after = models.CharField(max_length=32, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status in JobStatus.active()

    @property
    def we_initiated(self) -> bool:
        return self.initiator == settings.SITE_PARTY_ID

    def finish(self, status: str, *, error: str = "", party: str = "", node: str = "") -> None:
        self.status = status
        if error and not self.error:
            self.error, self.failed_party, self.failed_node = error[:4000], party, node
        self.finished_at = timezone.now()


class Sweep(models.Model):
    """One job per value of a parameter (or per pair of values of two), started together from one job;
    the nodes upstream of the parameter are computed once and reused by the others."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="sweeps")
    base_job = models.ForeignKey(Job, null=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(_("name"), max_length=200)
    # [{"node": "lr", "param": "learning_rate", "values": [0.05, 0.1, 0.2]}, ...] (one or two axes)
    axes = models.JSONField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class Task(models.Model):
    """One site's half of one node, in its latest attempt."""

    OURS, PARTNER = "ours", "partner"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="tasks")
    node = models.CharField(max_length=32)
    site = models.CharField(max_length=8, choices=[(OURS, _("this site")), (PARTNER, _("the partner"))])
    party = models.CharField(max_length=63)
    role = models.CharField(max_length=16)
    component = models.CharField(max_length=64)
    version = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.WAITING, db_index=True)
    attempt = models.PositiveIntegerField(default=1)
    progress = models.FloatField(default=0.0)  # 0..1
    stage = models.CharField(max_length=200, blank=True)  # "epoch 3 of 10"
    metrics = models.JSONField(default=dict, blank=True)  # running figures (loss per epoch...), then the final ones
    error = models.TextField(blank=True)
    # The failure was the machine's, not the data's (a worker lost): the job resumes by itself.
    retryable = models.BooleanField(default=False)
    cache_key = models.CharField(max_length=64, blank=True, db_index=True)
    outputs = models.JSONField(default=dict, blank=True)  # {port: artifact id}
    reused_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reused_job = models.CharField(max_length=36, blank=True)  # for the partner's mirror: the job it reused
    celery_id = models.CharField(max_length=64, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "id"]
        constraints = [models.UniqueConstraint(fields=["job", "node", "site"], name="one_task_per_node_per_site")]

    def __str__(self) -> str:
        return f"{self.node} ({self.role}, {self.site})"

    @property
    def is_done(self) -> bool:
        return self.status in TaskStatus.done()

    @property
    def session_id(self) -> str:
        """The data-plane session both halves of this node's attempt talk in."""
        return session_id(self.job_id, self.node, self.attempt)

    def start(self) -> None:
        self.status, self.started_at, self.heartbeat_at = TaskStatus.RUNNING, timezone.now(), timezone.now()
        self.finished_at, self.error, self.progress, self.stage = None, "", 0.0, ""

    def finish(self, status: str, *, error: str = "", retryable: bool = False) -> None:
        self.status, self.error, self.finished_at, self.retryable = status, error[:4000], timezone.now(), retryable
        if status in TaskStatus.done():
            self.progress = 1.0


def session_id(job_id, node: str, attempt: int) -> str:
    return f"j{uuid.UUID(str(job_id)).hex[:20]}-{node}-{attempt}"


class Artifact(models.Model):
    """A table, model or metrics file in the artifact store, named by its SHA-256."""

    id = models.CharField(max_length=64, primary_key=True)  # sha256 of the stored bytes
    kind = models.CharField(max_length=16)  # table | model | metrics
    size_bytes = models.PositiveBigIntegerField()
    rows = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.id[:12]}"


class ModelStatus(models.TextChoices):
    DRAFT = "draft", _("Not published")
    REQUESTED = "requested", _("Waiting for the partner to confirm publication")
    ASKED = "asked", _("The partner asks to publish it")
    PUBLISHED = "published", _("Published for scoring")
    ARCHIVED = "archived", _("Archived")


class Model(models.Model):
    """A model a job trained (or an admin imported): the same id at both sites, each holding its own half.

    **Publication** needs both sites' consent: ``consent_here_at`` is ours,
    ``consent_partner_at`` the partner's (its ``model.publish`` event). Either site
    withdraws alone (``model.unpublish``), which clears both. Only a published model
    scores, in batch jobs or online.
    """

    TRAINED, IMPORTED = "trained", "imported"

    id = models.UUIDField(primary_key=True, editable=False)
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="models")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.PROTECT, related_name="models")
    node = models.CharField(max_length=32)
    component = models.CharField(max_length=64)
    version = models.CharField(max_length=16)  # the component's version
    role = models.CharField(max_length=16)
    params = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="+")
    # The preparation (a fitted preprocessing model) scoring applies to raw rows first, if any.
    transform = models.ForeignKey(Artifact, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # The scorecard scaling (base score, odds, points to double) when the job turned probabilities into points.
    scorecard = models.JSONField(null=True, blank=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    number = models.PositiveIntegerField(default=1)  # version of the model name, the same at both sites
    origin = models.CharField(max_length=16, default=TRAINED)
    origin_details = models.JSONField(default=dict, blank=True)  # an import: the bundle's signer, time, file
    consent_here_at = models.DateTimeField(null=True, blank=True)
    consent_here_by = models.CharField(max_length=150, blank=True)
    consent_partner_at = models.DateTimeField(null=True, blank=True)
    consent_partner_by = models.CharField(max_length=150, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name or self.component} v{self.number}"

    @property
    def label(self) -> str:
        return f"{self.name or self.component} · v{self.number}"

    @property
    def is_published(self) -> bool:
        return self.consent_here_at is not None and self.consent_partner_at is not None and self.archived_at is None

    @property
    def status(self) -> str:
        if self.archived_at is not None:
            return ModelStatus.ARCHIVED
        if self.is_published:
            return ModelStatus.PUBLISHED
        if self.consent_here_at is not None:
            return ModelStatus.REQUESTED
        if self.consent_partner_at is not None:
            return ModelStatus.ASKED
        return ModelStatus.DRAFT

    def get_status_display(self) -> str:
        return ModelStatus(self.status).label


class ServingTable(models.Model):
    """The table this site's admin registered for online scoring with a model: its rows are
    looked up by id when a scoring request arrives (the host's features, or the guest's)."""

    model = models.OneToOneField(Model, on_delete=models.CASCADE, related_name="serving")
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="+")
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    registered_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.dataset} for {self.model}"


class ScoringOutcome(models.TextChoices):
    SCORED = "scored", _("Scored")
    PARTIAL = "partial", _("Scored, some ids unknown")
    UNKNOWN_IDS = "unknown_ids", _("No id could be scored")
    REFUSED = "refused", _("Refused")
    PARTNER_REFUSED = "partner_refused", _("Refused by the partner")
    TIMEOUT = "timeout", _("The partner did not answer in time")
    UNREACHABLE = "unreachable", _("The partner could not be reached")
    ERROR = "error", _("Failed")


class ScoringRequest(models.Model):
    """One online scoring request as this site saw it (both sites keep one row per request id):
    what reconciliation between the two organisations is built from."""

    request_id = models.UUIDField(unique=True)  # chosen by the label holder, the same at both sites
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="scoring_requests")
    model_id = models.UUIDField(db_index=True)  # not a key: a refusal of an unknown model is logged too
    model_number = models.PositiveIntegerField(null=True, blank=True)
    role = models.CharField(max_length=16)  # ours in this request: guest (asked) or host (answered)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    ids = models.PositiveIntegerField(default=0)  # how many ids were asked for
    scored = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=ScoringOutcome.choices)
    detail = models.CharField(max_length=500, blank=True)
    duration_ms = models.FloatField(default=0.0)
    caller = models.CharField(max_length=150, blank=True)  # the token's user here; the partner's party id there
    # The label holder sent it to the partner (a request refused before that leaves no trace there).
    # Always true at the partner: it logs only what reached it.
    asked_partner = models.BooleanField(default=False)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["project", "model_id", "at"])]

    def __str__(self) -> str:
        return f"{self.request_id} {self.outcome}"


def model_id(job_id, node: str) -> uuid.UUID:
    """Both sites derive the same model id from the job and node."""
    return uuid.uuid5(uuid.UUID(str(job_id)), f"model/{node}")
