"""Audit rows and the head of their hash chain.

Each row's ``hash`` covers its own fields and the previous row's hash, so changing or
deleting any row breaks the chain from that point on; the single ``AuditChainHead`` row
remembers the last sequence number and hash, so deleting rows at the end is detected
too. ``manage.py verify_audit`` walks the chain.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    LOGIN = "login", _("Signed in")
    LOGIN_FAILED = "login_failed", _("Failed sign-in")
    LOGIN_THROTTLED = "login_throttled", _("Sign-in refused: too many failures")
    LOGOUT = "logout", _("Signed out")
    PASSWORD_CHANGE = "password_change", _("Changed password")
    USER_CREATE = "user_create", _("Created user")
    USER_UPDATE = "user_update", _("Changed user")
    USER_PASSWORD_SET = "user_password_set", _("Set a user's password")
    USER_DEACTIVATE = "user_deactivate", _("Deactivated user")
    USER_REACTIVATE = "user_reactivate", _("Reactivated user")
    TOKEN_CREATE = "token_create", _("Created API token")
    TOKEN_REVOKE = "token_revoke", _("Revoked API token")
    DATASET_UPLOAD = "dataset_upload", _("Uploaded dataset")
    DATASET_VALIDATE = "dataset_validate", _("Validated dataset")
    DATASET_SCHEMA = "dataset_schema", _("Changed dataset columns")
    DATASET_UPDATE = "dataset_update", _("Renamed or described dataset")
    DATASET_DOWNLOAD = "dataset_download", _("Downloaded dataset")
    DATASET_DELETE = "dataset_delete", _("Deleted dataset")
    GRANT = "grant", _("Granted dataset access")
    REVOKE = "revoke", _("Revoked dataset access")
    AUDIT_EXPORT = "audit_export", _("Exported audit trail")
    PARTNER_IMPORT = "partner_import", _("Paired with a partner site")
    PROJECT_INVITE = "project_invite", _("Project invitation")
    PROJECT_ACCEPT = "project_accept", _("Project accepted")
    PROJECT_REJECT = "project_reject", _("Project rejected")
    PROJECT_SUSPEND = "project_suspend", _("Project suspended")
    PROJECT_RESUME = "project_resume", _("Project resumed")
    PROJECT_REVOKE = "project_revoke", _("Project revoked")
    PROJECT_ROTATE = "project_rotate", _("Cooperation token rotated")
    PROJECT_MEMBER_ADD = "project_member_add", _("Added someone to a project")
    PROJECT_MEMBER_REMOVE = "project_member_remove", _("Removed someone from a project")
    TABLE_AUTHORISED = "table_authorised", _("Table authorised into a project")
    TABLE_REMOVED = "table_removed", _("Table removed from a project")
    PSI_POLICY_UPDATE = "psi_policy_update", _("PSI policy changed")
    PSI_SESSION_OPEN = "psi_session_open", _("PSI run requested by the partner")
    PROXY_REJECT = "proxy_reject", _("Partner request refused")
    PROJECT_JOB_SETTINGS = "project_job_settings", _("Changed a project's job settings")
    JOB_CREATE = "job_create", _("Started a job")
    JOB_ACCEPT = "job_accept", _("Approved a job")
    JOB_REFUSE = "job_refuse", _("Refused a job")
    JOB_CANCEL = "job_cancel", _("Cancelled a job")
    JOB_RESUME = "job_resume", _("Resumed a job")
    JOB_GATE_CONTINUE = "job_gate_continue", _("Let a job go on at a gate")
    JOB_GATE_STOP = "job_gate_stop", _("Stopped a job at a gate")
    JOB_SWEEP = "job_sweep", _("Started a parameter comparison")
    JOB_OUTPUT_DOWNLOAD = "job_output_download", _("Downloaded a job's output")
    JOB_RECEIVED = "job_received", _("Job received from the partner")
    JOB_ACCEPTED = "job_accepted", _("The partner approved a job")
    JOB_REFUSED = "job_refused", _("The partner refused a job")
    JOB_CANCELLED = "job_cancelled", _("The partner cancelled a job")
    JOB_CONTINUED = "job_continued", _("The partner let a job go on")
    JOB_PAUSED = "job_paused", _("Job paused")
    MODEL_PUBLISH = "model_publish", _("Published a model")
    MODEL_UNPUBLISH = "model_unpublish", _("Withdrew a model")
    MODEL_ARCHIVE = "model_archive", _("Archived a model")
    MODEL_RESTORE = "model_restore", _("Restored a model")
    MODEL_PUBLISH_PARTNER = "model_publish_partner", _("The partner published a model")
    MODEL_UNPUBLISH_PARTNER = "model_unpublish_partner", _("The partner withdrew a model")
    MODEL_SERVING_TABLE = "model_serving_table", _("Chose a model's scoring table")
    MODEL_EXPORT = "model_export", _("Exported a model")
    MODEL_IMPORT = "model_import", _("Imported a model")


class AuditOutcome(models.TextChoices):
    SUCCESS = "success", _("Succeeded")
    FAILURE = "failure", _("Failed")
    DENIED = "denied", _("Denied")


class AuditEvent(models.Model):
    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    event_id = models.UUIDField(default=uuid.uuid4, editable=False, db_index=True)
    created_at = models.DateTimeField(editable=False, db_index=True)
    # PROTECT: the actor id is part of the hashed content, so users who appear in the
    # trail are deactivated, never deleted.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Kept as text so the trail still reads right after a user is renamed or removed.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=16, choices=AuditOutcome.choices, default=AuditOutcome.SUCCESS)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    object_repr = models.CharField(max_length=255, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_name or '-'}"

    @property
    def action_label(self) -> str:
        try:
            return AuditAction(self.action).label
        except ValueError:  # actions added by later versions read as their code
            return self.action

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("audit rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit rows are append-only")


class AuditChainHead(models.Model):
    """One row: the sequence number and hash of the newest audit row."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)
