"""This site's certificates, the control-event outbox and inbox, and the replay guard."""

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _


class SiteCertificate(models.Model):
    """One of this site's TLS identities. The private key lives on disk beside the data,
    never in the database. During a rotation two are valid: the current one, and the
    next one that partners pin before it becomes current."""

    fingerprint = models.CharField(max_length=64, unique=True)  # SHA-256 of the DER certificate
    certificate_pem = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    not_after = models.DateTimeField()
    is_current = models.BooleanField(default=False)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["is_current"], condition=models.Q(is_current=True), name="one_current_site_certificate")
        ]

    def __str__(self) -> str:
        return f"{self.fingerprint[:16]}…{' (current)' if self.is_current else ''}"


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be delivered")
    DELIVERED = "delivered", _("Delivered")
    REFUSED = "refused", _("Refused by the partner")


class OutboxEvent(models.Model):
    """A state change a partner must learn, written in the same transaction as the change.

    The proxy's sender delivers events per (partner, stream) strictly in ``seq`` order,
    retrying with backoff; the receiver de-duplicates by ``event_id``.
    """

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    partner = models.ForeignKey("projects.Partner", on_delete=models.PROTECT, related_name="outbox")
    # Events are ordered per stream: a project's id, or "site" for pairing-level events.
    stream = models.CharField(max_length=64)
    seq = models.PositiveBigIntegerField()  # per (partner, stream), from 1
    type = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    # The cooperation token in force when the event was queued: it is MAC'd under that
    # one, so events queued before a rotation still verify at the partner.
    token_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["partner", "stream", "seq"], name="outbox_seq_per_stream")]

    def __str__(self) -> str:
        return f"{self.type} → {self.partner_id} #{self.seq}"


class InboxEvent(models.Model):
    """A partner's event, stored and applied in one transaction (so exactly once)."""

    event_id = models.UUIDField(unique=True)
    partner = models.ForeignKey("projects.Partner", on_delete=models.PROTECT, related_name="inbox")
    stream = models.CharField(max_length=64)
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["partner", "stream", "seq"], name="inbox_seq_per_stream")]


class SeenNonce(models.Model):
    """Nonces of accepted requests, kept for the freshness window (replay guard)."""

    sender = models.CharField(max_length=64)
    nonce = models.CharField(max_length=64)
    seen_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sender", "nonce"], name="nonce_once_per_sender")]
