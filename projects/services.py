"""Projects between two sites: invitation, answer, suspension, token rotation, revocation,
and the tables each side authorises into a project with its PSI policy.

Every change that the partner must learn is queued as an event in the same transaction
(``fedweb.proxy.events.emit``), recorded in the project's history and in the audit
trail under the event's id, so both sites' trails can be matched. The receiving side's
appliers live in ``projects/appliers.py``.
"""

from __future__ import annotations

import base64
from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from datasets.models import Dataset
from fedweb.api.errors import ServiceError
from fedweb.audit.services import record
from fedweb.proxy.events import emit

from . import tokens
from .models import Partner, Project, ProjectEvent, ProjectMember, ProjectStatus, ProjectTable

POLICY_FIELDS = {
    "runs_per_day": "psi_runs_per_day",
    "min_set_size": "psi_min_set_size",
    "max_set_size": "psi_max_set_size",
    "max_size_ratio": "psi_max_size_ratio",
    "min_overlap": "psi_min_overlap",
    "partner_may_receive": "psi_partner_may_receive",
}


def _lock(project) -> Project:
    """Lock the partner's row, then the project: the order the inbox and the outbox take, so an
    admin's change and the partner's incoming event never deadlock."""
    Partner.objects.select_for_update().filter(pk=project.partner_id).first()
    return Project.objects.select_for_update().get(pk=project.pk)


def _require_admin(user) -> None:
    if not user.is_site_admin:
        raise PermissionDenied(_("Only site admins can do this."))


def visible_projects(user):
    """Site admins see every project; other users only those they are members of.

    Anything else answers "not found", so a non-member cannot even learn a project exists.
    """
    if not user.is_authenticated or not user.is_active:
        return Project.objects.none()
    projects = Project.objects.select_related("partner")
    if user.is_site_admin:
        return projects
    return projects.filter(members__user=user)


def history(project, event, *, direction: str, party: str, summary: str, actor_name: str = "") -> None:
    ProjectEvent.objects.create(
        project=project, event_id=event.event_id if hasattr(event, "event_id") else event,
        type=event.type if hasattr(event, "type") else "", direction=direction, party=party,
        actor_name=actor_name, summary=summary[:500],
    )


def _announce(project, event_type: str, payload: dict, *, user, request, summary: str, token_version: int | None = None):
    event = emit(project.partner, event_type, payload, project=project, token_version=token_version)
    history(project, event, direction="out", party=settings.SITE_PARTY_ID, summary=summary, actor_name=user.get_username() if user else "")
    record(event_type.replace(".", "_"), actor=user, request=request, obj=project, event_id=event.event_id,
           details={"partner": project.partner.party_id, **{k: v for k, v in payload.items() if not k.startswith("sealed:")}})
    return event


# --- Lifecycle --------------------------------------------------------------------

def create_project(*, user, partner: Partner, name: str, purpose: str, we_hold_labels: bool, request=None) -> Project:
    """An analyst invites a partner; the partner's admin accepts or rejects."""
    if not user.can_write:
        raise PermissionDenied(_("Viewers cannot create projects."))
    if not partner.is_active:
        raise ServiceError(_("This partner is disabled."), details={"partner": [_("Disabled partner.")]})
    name, purpose = (name or "").strip(), (purpose or "").strip()
    if not name or not purpose:
        raise ServiceError(_("A project needs a name and a purpose."), details={"name": [_("Required.")], "purpose": [_("Required.")]})
    label_holder = settings.SITE_PARTY_ID if we_hold_labels else partner.party_id
    with transaction.atomic():
        project = Project(
            name=name[:200], purpose=purpose, partner=partner, initiator=settings.SITE_PARTY_ID,
            label_holder=label_holder, status=ProjectStatus.PENDING, created_by=user,
        )
        # The invitation token: the partner's answer and everything after it is MAC'd.
        token = tokens.new_token()
        tokens.set_token(project, token, 1, issued_here=True)
        project.save()
        ProjectMember.objects.create(project=project, user=user, added_by=user)
        _announce(
            project, "project.invite",
            {"name": project.name, "purpose": purpose, "label_holder": label_holder, "invited_by": user.get_username(),
             "version": 1, "sealed:token": _sealed(token)},
            user=user, request=request, summary=_("Invitation sent to %(p)s") % {"p": partner.name},
        )
    return project


def _sealed(token: bytes) -> str:
    """A token as an outbox payload value: encrypted at rest, opened only when sent."""
    return base64.b64encode(tokens.seal(token)).decode()


def accept(*, user, project: Project, comment: str = "", request=None) -> Project:
    _require_admin(user)
    with transaction.atomic():
        project = _lock(project)
        if project.status != ProjectStatus.INVITED:
            raise ServiceError(_("Only a pending invitation can be accepted."), code="wrong_state", status_code=409)
        # The project's own token, issued by us; the acceptance itself is MAC'd under the
        # invitation token, which the inviter knows.
        old_version = project.token_version
        token = tokens.new_token()
        tokens.set_token(project, token, old_version + 1, issued_here=True)
        project.status, project.status_changed_by, project.decision_comment = ProjectStatus.ACTIVE, settings.SITE_PARTY_ID, comment
        project.save()
        _announce(
            project, "project.accept",
            {"comment": comment, "version": old_version + 1, "sealed:token": _sealed(token)},
            user=user, request=request, summary=_("Invitation accepted"), token_version=old_version,
        )
    return project


def reject(*, user, project: Project, comment: str = "", request=None) -> Project:
    _require_admin(user)
    with transaction.atomic():
        project = _lock(project)
        if project.status != ProjectStatus.INVITED:
            raise ServiceError(_("Only a pending invitation can be rejected."), code="wrong_state", status_code=409)
        project.status, project.status_changed_by, project.decision_comment = ProjectStatus.REJECTED, settings.SITE_PARTY_ID, comment
        project.save()
        _announce(project, "project.reject", {"comment": comment}, user=user, request=request, summary=_("Invitation rejected"))
    return project


def _change_status(*, user, project, allowed_from: set, to: str, event_type: str, summary: str, request, comment: str = "",
                   check=None, change=None):
    _require_admin(user)
    with transaction.atomic():
        project = _lock(project)
        if project.status not in allowed_from:
            raise ServiceError(
                _("The project is %(status)s: this cannot be done now.") % {"status": project.get_status_display()},
                code="wrong_state", status_code=409,
            )
        if check is not None:
            check(project)
        was_active = project.is_active
        if change is not None:
            change(project)
        else:
            project.status = to
        project.status_changed_by = settings.SITE_PARTY_ID
        project.save(update_fields=["status", "status_changed_by", "suspended_here", "updated_at"])
        _announce(project, event_type, {"comment": comment}, user=user, request=request, summary=summary)
        if was_active and not project.is_active:
            stop_running_work(project, reason=summary)
    return project


def _not_suspended_here(project):
    if project.suspended_here:
        raise ServiceError(_("This site has already suspended the project."), code="wrong_state", status_code=409)


def _suspended_here(project):
    if not project.suspended_here:
        raise ServiceError(
            _("The partner suspended this project; only the partner can lift its suspension."),
            code="wrong_state", status_code=409,
        )


def _suspend_here(project):
    project.suspended_here = True
    project.status = ProjectStatus.SUSPENDED


def _resume_here(project):
    # A suspension is lifted only by the side that made it: the partner's stays.
    project.suspended_here = False
    project.status = ProjectStatus.SUSPENDED if project.suspended_by_partner else ProjectStatus.ACTIVE


def suspend(*, user, project, comment: str = "", request=None):
    return _change_status(user=user, project=project, allowed_from={ProjectStatus.ACTIVE, ProjectStatus.SUSPENDED},
                          to=ProjectStatus.SUSPENDED, event_type="project.suspend", summary=_("Project suspended"),
                          request=request, comment=comment, check=_not_suspended_here, change=_suspend_here)


def resume(*, user, project, comment: str = "", request=None):
    return _change_status(user=user, project=project, allowed_from={ProjectStatus.SUSPENDED}, to=ProjectStatus.ACTIVE,
                          event_type="project.resume", summary=_("This site lifted its suspension"), request=request,
                          comment=comment, check=_suspended_here, change=_resume_here)


def revoke(*, user, project, comment: str = "", request=None):
    return _change_status(
        user=user, project=project,
        allowed_from={ProjectStatus.ACTIVE, ProjectStatus.SUSPENDED, ProjectStatus.PENDING},
        to=ProjectStatus.REVOKED, event_type="project.revoke", summary=_("Project revoked"), request=request, comment=comment,
    )


def rotate_token(*, user, project, request=None) -> Project:
    _require_admin(user)
    with transaction.atomic():
        project = _lock(project)
        if project.status not in (ProjectStatus.ACTIVE, ProjectStatus.SUSPENDED):
            raise ServiceError(_("Only an active or suspended project has a token to rotate."), code="wrong_state", status_code=409)
        if tokens.awaiting_confirmation(project):
            # The event carrying the previous new token is MAC'd under the one before it;
            # rotating again now would leave it unsendable.
            raise ServiceError(_("The previous new token has not reached the partner yet. Try again once it has."),
                               code="wrong_state", status_code=409)
        old_version = project.token_version
        token = tokens.new_token()
        tokens.set_token(project, token, old_version + 1, issued_here=True)
        project.save()
        # Announced under the OLD token: the partner does not know the new one yet.
        _announce(
            project, "project.rotate", {"version": old_version + 1, "sealed:token": _sealed(token)},
            user=user, request=request, summary=_("Cooperation token rotated"), token_version=old_version,
        )
    return project


def stop_running_work(project: Project, *, reason: str) -> None:
    """Stop the project's jobs and close its open sessions: waiting work on this site ends at once."""
    from fedweb.proxy import mailbox
    from jobs.services import stop_jobs

    stop_jobs(project, reason=reason)
    for session in project.sessions.filter(closed_at__isnull=True):
        mailbox.record_abort(session.session_id, project.partner.party_id, reason)
        session.closed_at = timezone.now()
        session.save(update_fields=["closed_at"])


# --- Tables ----------------------------------------------------------------------

def table_announcement(table: ProjectTable) -> dict:
    dataset = table.dataset
    return {
        "table_id": str(dataset.pk),
        "name": dataset.name,
        "row_count": dataset.row_count,
        "columns": [{"name": c["name"], "role": c["role"], "type": c.get("type")} for c in dataset.columns if c["role"] != "ignored"],
        "expires_at": table.expires_at.isoformat() if table.expires_at else None,
        "partner_may_receive_intersection": table.psi_partner_may_receive,
        "version": dataset.version,
    }


def _clean_policy(policy: dict) -> dict:
    cleaned, problems = {}, {}
    for name, field in POLICY_FIELDS.items():
        if name not in policy or policy[name] is None:
            continue
        value = policy[name]
        try:
            if name == "partner_may_receive":
                cleaned[field] = bool(value)
            elif name == "max_size_ratio":
                cleaned[field] = float(value)
                if cleaned[field] < 1:
                    raise ValueError
            else:
                cleaned[field] = int(value)
                if cleaned[field] < (1 if name == "runs_per_day" else 0):
                    raise ValueError
        except (TypeError, ValueError):
            problems[name] = [_("Not a valid value.")]
    low = cleaned.get("psi_min_set_size")
    high = cleaned.get("psi_max_set_size")
    if low is not None and high is not None and low > high:
        problems["max_set_size"] = [_("Must be at least the minimum set size.")]
    if problems:
        raise ServiceError(_("Some PSI policy values are not valid."), details=problems)
    return cleaned


def authorise_table(*, user, project: Project, dataset: Dataset, expires_at: datetime | None = None,
                    policy: dict | None = None, request=None) -> ProjectTable:
    """Bring one of our datasets into the project; the partner sees its name, size and columns."""
    _require_admin(user)
    if not project.is_active:
        raise ServiceError(_("Tables can be authorised into an active project only."), code="wrong_state", status_code=409)
    if dataset.deleted_at is not None or not dataset.is_ready:
        raise ServiceError(_("Only a ready dataset can be authorised."), details={"dataset": [_("Not ready.")]})
    if expires_at is not None and expires_at <= timezone.now():
        raise ServiceError(_("The end date must be in the future."), details={"expires_at": [_("Must be in the future.")]})
    other = (ProjectTable.objects.filter(project=project, dataset__lineage_id=dataset.lineage_id, revoked_at__isnull=True)
             .exclude(dataset=dataset).select_related("dataset").first())
    if other is not None:
        # One version of a dataset per project: the partner would see two tables of one name.
        raise ServiceError(
            _("Version %(old)s of this dataset is already in the project. Move the project to version %(new)s on "
              "that table's card instead.") % {"old": other.dataset.version, "new": dataset.version},
            code="other_version", status_code=409, details={"dataset": [_("Another version is in the project.")]},
        )
    with transaction.atomic():
        table = ProjectTable.objects.select_for_update().filter(project=project, dataset=dataset, revoked_at__isnull=True).first()
        if table is None:
            table = ProjectTable(project=project, dataset=dataset, authorised_by=user)
        table.expires_at = expires_at
        for field, value in _clean_policy(policy or {}).items():
            setattr(table, field, value)
        table.save()
        _announce(project, "table.authorised", table_announcement(table), user=user, request=request,
                  summary=_("Table “%(t)s” authorised") % {"t": dataset.name})
    return table


def update_policy(*, user, table: ProjectTable, policy: dict, request=None) -> ProjectTable:
    _require_admin(user)
    with transaction.atomic():
        for field, value in _clean_policy(policy).items():
            setattr(table, field, value)
        table.save()
        record("psi_policy_update", actor=user, request=request, obj=table.project, details={"table": str(table.dataset_id), "policy": table.policy()})
        if table.project.is_active:
            _announce(table.project, "table.authorised", table_announcement(table), user=user, request=request,
                      summary=_("PSI policy of “%(t)s” changed") % {"t": table.dataset.name})
    return table


def remove_table(*, user, table: ProjectTable, request=None) -> None:
    _require_admin(user)
    with transaction.atomic():
        table.revoked_at = timezone.now()
        table.save(update_fields=["revoked_at"])
        project = table.project
        from jobs.services import stop_jobs

        stop_jobs(project, table_id=str(table.dataset_id),
                  reason=_("The table “%(t)s” was removed from the project.") % {"t": table.dataset.name})
        if project.status in (ProjectStatus.ACTIVE, ProjectStatus.SUSPENDED):
            _announce(project, "table.removed", {"table_id": str(table.dataset_id)}, user=user, request=request,
                      summary=_("Table “%(t)s” removed") % {"t": table.dataset.name})


def newer_version(table: ProjectTable) -> Dataset | None:
    """The newest ready version of the table's dataset when it is newer than the one in use."""
    newest = (Dataset.objects.alive().filter(lineage_id=table.dataset.lineage_id, status="ready")
              .order_by("-version").first())
    return newest if newest is not None and newest.version > table.dataset.version else None


def version_facts(table: ProjectTable) -> dict:
    """What a table's card says about versions: {"this", "newest" (number), "newer" (a ready newer
    version or None), "moved_from" (the authorisation it replaced, if any)}."""
    numbers = list(Dataset.objects.alive().filter(lineage_id=table.dataset.lineage_id).values_list("version", flat=True))
    return {
        "this": table.dataset.version,
        "newest": max(numbers or [table.dataset.version]),
        "newer": newer_version(table) if table.is_live else None,
        "moved_from": table.replaces.select_related("dataset").order_by("-revoked_at").first(),
    }


def move_to_version(*, user, table: ProjectTable, version: int, request=None) -> ProjectTable:
    """Put another version of a table's dataset in its place in the project.

    The new version is authorised with the same PSI policy and end date and announced to
    the partner; the old one is withdrawn the way removing a table withdraws it (the
    partner's copy is marked removed, jobs reading it stop). PSI runs of the day count for
    the new authorisation too, and the project's serving tables follow the move.
    """
    from jobs.models import ServingTable
    from jobs.services import stop_jobs

    _require_admin(user)
    project = table.project
    if not project.is_active:
        raise ServiceError(_("Tables can be authorised into an active project only."), code="wrong_state", status_code=409)
    dataset = Dataset.objects.alive().filter(lineage_id=table.dataset.lineage_id, version=version).first()
    if dataset is None or dataset.pk == table.dataset_id:
        raise ServiceError(_("Choose another version of this table's dataset."), details={"version": [_("Not another version.")]})
    if not dataset.is_ready:
        raise ServiceError(_("Only a ready dataset can be authorised."), details={"dataset": [_("Not ready.")]})
    with transaction.atomic():
        old = ProjectTable.objects.select_for_update().select_related("dataset").get(pk=table.pk)
        if not old.is_live:
            raise ServiceError(_("This table is no longer in the project; authorise the version you want instead."),
                               code="wrong_state", status_code=409)
        old.revoked_at = timezone.now()
        old.save(update_fields=["revoked_at"])
        new = ProjectTable(project=project, dataset=dataset, authorised_by=user, expires_at=old.expires_at,
                           **{field: getattr(old, field) for field in POLICY_FIELDS.values()})
        new.save()
        old.replaced_by = new
        old.save(update_fields=["replaced_by"])
        words = {"t": dataset.name, "old": old.dataset.version, "new": dataset.version}
        stop_jobs(project, table_id=str(old.dataset_id),
                  reason=_("The table “%(t)s” moved from version %(old)s to version %(new)s.") % words)
        ServingTable.objects.filter(model__project=project, dataset_id=old.dataset_id).update(dataset=dataset, registered_by=user)
        _announce(project, "table.removed", {"table_id": str(old.dataset_id), "replaced_by": str(dataset.pk)},
                  user=user, request=request, summary=_("Table “%(t)s” version %(old)s withdrawn for version %(new)s") % words)
        _announce(project, "table.authorised", {**table_announcement(new), "replaces": str(old.dataset_id)},
                  user=user, request=request, summary=_("Table “%(t)s” moved from version %(old)s to version %(new)s") % words)
    return new
