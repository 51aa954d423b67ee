"""Who on this site may see a project (seed 000's 对内权限控制).

Site admins see every project and decide who else does: a member sees the project, its
tables and its history; what they may do in it still follows their site role. Only this
site learns who its members are: nothing here is sent to the partner.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.translation import gettext as _

from fedweb.accounts.models import Role
from fedweb.api.errors import ServiceError
from fedweb.audit.models import AuditAction
from fedweb.audit.services import record

from .models import Project, ProjectMember


def _require_admin(user) -> None:
    if not user.is_site_admin:
        raise PermissionDenied(_("Only site admins can choose who is in a project."))


def members_of(project: Project):
    return ProjectMember.objects.filter(project=project).select_related("user", "added_by")


def candidates(project: Project):
    """Users an admin may add: active, not site admins (they see everything), not members yet."""
    return (
        get_user_model().objects.filter(is_active=True, is_superuser=False)
        .exclude(role=Role.ADMIN)
        .exclude(project_memberships__project=project)
        .order_by("username")
    )


def add_member(*, by, project: Project, user, request=None) -> tuple[ProjectMember, bool]:
    """Let ``user`` see ``project``; returns the membership and whether it is new.

    Adding someone who is already a member changes nothing and records nothing.
    """
    _require_admin(by)
    if not user.is_active:
        raise ServiceError(_("This user is disabled."), details={"user": [_("Disabled user.")]})
    if user.is_site_admin:
        raise ServiceError(
            _("Site admins already see every project."), details={"user": [_("This user is a site admin.")]}
        )
    with transaction.atomic():
        member, created = ProjectMember.objects.get_or_create(project=project, user=user, defaults={"added_by": by})
        if created:
            record(
                AuditAction.PROJECT_MEMBER_ADD, actor=by, request=request, obj=project,
                details={"user": user.get_username(), "role": user.role},
            )
    return member, created


def remove_member(*, by, project: Project, user, request=None) -> bool:
    """Stop ``user`` seeing ``project``; returns False if they were not a member."""
    _require_admin(by)
    with transaction.atomic():
        deleted, _rows = ProjectMember.objects.filter(project=project, user=user).delete()
        if deleted:
            record(
                AuditAction.PROJECT_MEMBER_REMOVE, actor=by, request=request, obj=project,
                details={"user": user.get_username(), "role": user.role},
            )
    return bool(deleted)
