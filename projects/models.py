"""Partners (paired sites), projects with their cooperation tokens, and the tables each
side authorised into a project with its PSI policy."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Partner(models.Model):
    """A partner site this site's admin paired with by importing its site bundle."""

    party_id = models.CharField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    proxy_address = models.CharField(max_length=255, help_text=_("host:port of the partner's proxy"))
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.party_id})"

    def pinned(self):
        """Certificates that currently authenticate this partner."""
        now = timezone.now()
        return self.certificates.filter(retired_at__isnull=True, not_after__gt=now, not_before__lte=now)


class PartnerCertificate(models.Model):
    """A pinned certificate of a partner (two during the partner's rotation)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="certificates")
    fingerprint = models.CharField(max_length=64, unique=True)
    certificate_pem = models.TextField()
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    added_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-added_at"]


class ProjectStatus(models.TextChoices):
    INVITED = "invited", _("Invitation waiting for our answer")
    PENDING = "pending", _("Waiting for the partner's answer")
    ACTIVE = "active", _("Active")
    REJECTED = "rejected", _("Rejected")
    SUSPENDED = "suspended", _("Suspended")
    REVOKED = "revoked", _("Revoked")

    @classmethod
    def closed(cls) -> set[str]:
        return {cls.REJECTED, cls.REVOKED}


class GateDecider(models.TextChoices):
    """Who decides whether a job stopped at a gate (``pause_after`` in its spec) goes on."""

    INITIATOR = "initiator", _("Someone who can run jobs at the site that started the job")
    PARTNER_ADMIN = "partner_admin", _("A site admin of the other site")


class Project(models.Model):
    """Two sites' agreement to work together on a purpose, with one cooperation token.

    The id is chosen by the initiating site and is the same at both sites.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("name"), max_length=200)
    purpose = models.TextField(_("purpose"))
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="projects")
    initiator = models.CharField(max_length=63)  # party id of the site that invited
    label_holder = models.CharField(max_length=63)  # party id of the guest (holds the labels)
    status = models.CharField(max_length=16, choices=ProjectStatus.choices)
    status_changed_by = models.CharField(max_length=63, blank=True)  # party id
    # A suspension is lifted only by the side that made it, so each side's is kept
    # apart: the project is suspended while either flag is set.
    suspended_here = models.BooleanField(default=False)
    suspended_by_partner = models.BooleanField(default=False)
    # Our admin approves each job the partner starts before it runs on our hardware.
    approve_partner_jobs = models.BooleanField(default=False)
    # Who decides at a job's gate. Both sites must choose the same: a partner's gated job
    # naming another decider is refused, so the rule a job runs under is one both agreed to.
    gate_decider = models.CharField(max_length=16, choices=GateDecider.choices, default=GateDecider.INITIATOR)
    # The partner may publish a model for scoring alone: its request is confirmed here at once
    # (otherwise one of our admins confirms each).
    auto_confirm_models = models.BooleanField(default=False)
    decision_comment = models.TextField(blank=True)
    # The cooperation token, encrypted at rest with a key derived from the site's secret.
    token_encrypted = models.BinaryField(null=True, blank=True, editable=False)
    token_version = models.PositiveIntegerField(default=0)
    previous_token_encrypted = models.BinaryField(null=True, blank=True, editable=False)
    previous_token_valid_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == ProjectStatus.ACTIVE

    @property
    def we_initiated(self) -> bool:
        return self.initiator == settings.SITE_PARTY_ID

    @property
    def we_hold_labels(self) -> bool:
        return self.label_holder == settings.SITE_PARTY_ID


class ProjectMember(models.Model):
    """A user of this site who may see a project, its tables and its jobs.

    Site admins see every project; anyone else only the projects they are a member of
    (seed 000's 对内权限控制). What a member may do still follows their site role: a
    viewer member reads, an analyst member works.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_memberships")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user__username"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project}"


class ProjectTableQuerySet(models.QuerySet):
    def live(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class ProjectTable(models.Model):
    """One of OUR datasets, authorised into a project by our admin, with its PSI policy.

    The policy is enforced on this site whatever the partner's site claims.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tables")
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="project_tables")
    authorised_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    authorised_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # PSI policy for this table in this project.
    psi_runs_per_day = models.PositiveIntegerField(default=5, validators=[MinValueValidator(1)])
    psi_min_set_size = models.PositiveIntegerField(default=100)
    psi_max_set_size = models.PositiveBigIntegerField(default=50_000_000)
    psi_max_size_ratio = models.FloatField(default=10.0, validators=[MinValueValidator(1.0)])
    psi_min_overlap = models.PositiveIntegerField(default=10)
    psi_partner_may_receive = models.BooleanField(default=False)
    # Set when an admin moved the project to another version of the dataset: the
    # authorisation of that version, made with this one's policy and end date.
    replaced_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaces")

    objects = ProjectTableQuerySet.as_manager()

    class Meta:
        ordering = ["-authorised_at"]
        constraints = [
            models.UniqueConstraint(fields=["project", "dataset"], condition=Q(revoked_at__isnull=True), name="one_live_authorisation")
        ]

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    def policy(self) -> dict:
        return {
            "runs_per_day": self.psi_runs_per_day,
            "min_set_size": self.psi_min_set_size,
            "max_set_size": self.psi_max_set_size,
            "max_size_ratio": self.psi_max_size_ratio,
            "min_overlap": self.psi_min_overlap,
            "partner_may_receive": self.psi_partner_may_receive,
        }


class RemoteTable(models.Model):
    """A table the PARTNER authorised into a project: names and counts only, never rows."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="remote_tables")
    table_id = models.CharField(max_length=64)  # the partner's dataset id
    name = models.CharField(max_length=200)
    row_count = models.PositiveBigIntegerField(null=True, blank=True)
    columns = models.JSONField(default=list)  # [{"name", "role", "type"}]
    version = models.PositiveIntegerField(null=True, blank=True)  # of the partner's dataset, when it says
    replaced_by = models.CharField(max_length=64, blank=True)  # the table_id of the version that took its place
    expires_at = models.DateTimeField(null=True, blank=True)
    is_authorised = models.BooleanField(default=True)
    partner_may_receive_intersection = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "table_id"], name="one_remote_table")]


class ProjectEvent(models.Model):
    """The project's history as both sites see it (same event id on both sides)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="events")
    event_id = models.UUIDField()
    type = models.CharField(max_length=64)
    direction = models.CharField(max_length=8, choices=[("out", _("sent")), ("in", _("received"))])
    party = models.CharField(max_length=63)  # whose action it was
    actor_name = models.CharField(max_length=150, blank=True)
    summary = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class JobSession(models.Model):
    """A run of a federated algorithm inside a project; the data plane accepts messages
    only for open sessions. PSI sessions are opened through the data owner's policy."""

    session_id = models.CharField(max_length=64, unique=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sessions")
    purpose = models.CharField(max_length=32)  # e.g. "psi"
    opened_by = models.CharField(max_length=63)  # party id
    table = models.ForeignKey(ProjectTable, null=True, blank=True, on_delete=models.PROTECT, related_name="sessions")
    details = models.JSONField(default=dict)
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]

    @property
    def is_open(self) -> bool:
        return self.closed_at is None
