"""Browser pages for partners and projects. Each view parses a form and calls one service."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.http.request import split_domain_port
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from datasets.views import _service_call
from fedweb.api.errors import ServiceError
from fedweb.proxy import pki

from jobs import services as job_services
from jobs.services import visible_jobs

from . import membership, pairing, services
from .forms import (AuthoriseForm, BundleExportForm, BundleImportForm, CommentForm, JobSettingsForm, PolicyForm,
                    ProjectForm)
from .models import Partner, ProjectStatus

# Seconds the "Test connection" button waits for the partner's proxy.
CONNECTION_TIMEOUT = 5.0
PROXY_PORT = 7443


def _require_admin(request) -> None:
    if not request.user.is_site_admin:
        raise PermissionDenied(_("Only site admins can do this."))


# --- Partners ----------------------------------------------------------------------

def _this_site() -> dict:
    try:
        current, problem = pki.current(), ""
    except pki.CertificateError as exc:
        current, problem = None, str(exc)
    others = [c for c in pki.published() if current is None or c.pk != current.pk]
    return {"certificate": current, "problem": problem, "next_certificates": others}


def _partners_page(request, *, export_form=None, import_form=None, report=None, tested=None, status=200):
    context = {"partners": Partner.objects.prefetch_related("certificates"), "report": report, "tested": tested}
    if request.user.is_site_admin:
        domain, _port = split_domain_port(request.get_host())
        context.update(
            this_site=_this_site(),
            export_form=export_form or BundleExportForm(initial={"proxy_address": f"{domain or 'localhost'}:{PROXY_PORT}"}),
            import_form=import_form or BundleImportForm(),
        )
    return render(request, "partners/list.html", context, status=status)


@login_required
def partner_list(request):
    return _partners_page(request)


@login_required
@require_POST
def bundle_download(request):
    _require_admin(request)
    form = BundleExportForm(request.POST)
    if not form.is_valid():
        return _partners_page(request, export_form=form, status=400)
    try:
        bundle = pairing.export_bundle(form.cleaned_data["proxy_address"])
    except pairing.PairingError as exc:
        messages.error(request, str(exc))
        return redirect("partners")
    response = HttpResponse(json.dumps(bundle, indent=2) + "\n", content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=f"{settings.SITE_PARTY_ID}-bundle.json")
    return response


@login_required
@require_POST
def bundle_import(request):
    _require_admin(request)
    form = BundleImportForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            partner = pairing.import_bundle(form.cleaned_data["bundle"], by=request.user, request=request)
        except pairing.PairingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _(
                "This site is now paired with %(name)s (%(party)s). Send them this site's bundle too, "
                "then test the connection."
            ) % {"name": partner.name, "party": partner.party_id})
            return redirect("partners")
    return _partners_page(request, import_form=form, status=400)


@login_required
@require_POST
def partner_test(request, party_id):
    _require_admin(request)
    partner = get_object_or_404(Partner, party_id=party_id)
    report = pairing.test_connection(partner, timeout=CONNECTION_TIMEOUT)
    if request.headers.get("HX-Request"):
        return render(request, "partners/_report.html", {"p": partner, "report": report, "tested": partner})
    return _partners_page(request, report=report, tested=partner)


# --- Projects ----------------------------------------------------------------------

def _project(request, pk):
    return get_object_or_404(services.visible_projects(request.user), pk=pk)


def _projects_page(request, *, form=None, status=200):
    projects = services.visible_projects(request.user)
    context = {
        "invitations": projects.filter(status=ProjectStatus.INVITED),
        "projects": projects.exclude(status=ProjectStatus.INVITED),
        "has_partners": Partner.objects.filter(is_active=True).exists(),
    }
    if request.user.can_write:
        context["form"] = form or ProjectForm()
    return render(request, "projects/list.html", context, status=status)


@login_required
def project_list(request):
    return _projects_page(request)


@login_required
@require_POST
def project_create(request):
    form = ProjectForm(request.POST)
    if not form.is_valid():
        return _projects_page(request, form=form, status=400)
    try:
        project = services.create_project(
            user=request.user, partner=form.cleaned_data["partner"], name=form.cleaned_data["name"],
            purpose=form.cleaned_data["purpose"], we_hold_labels=form.we_hold_labels, request=request,
        )
    except ServiceError as exc:
        form.add_error(None, exc.message)
        return _projects_page(request, form=form, status=400)
    except PermissionDenied as exc:
        messages.error(request, str(exc) or _("You are not allowed to do this."))
        return redirect("projects")
    messages.success(request, _("The invitation is on its way to %(name)s. The project starts when their admin accepts it.")
                     % {"name": project.partner.name})
    return redirect("projects:detail", pk=project.pk)


DECIDABLE = {ProjectStatus.INVITED, ProjectStatus.PENDING, ProjectStatus.ACTIVE, ProjectStatus.SUSPENDED}


def _detail_page(request, project, *, authorise_form=None, policy_forms=None, member_form=None, status=200):
    # A table moved to another version lives on as the card of the version that replaced it.
    tables = list(project.tables.filter(replaced_by__isnull=True).select_related("dataset", "authorised_by"))
    admin = request.user.is_site_admin
    bound = policy_forms or {}
    for table in tables:
        table.policy_form = (bound.get(table.pk) or PolicyForm.for_table(table)) if admin and table.is_live else None
        table.versions = services.version_facts(table)
    now = timezone.now()
    remote_tables = list(project.remote_tables.all())
    for remote in remote_tables:
        remote.expired = remote.expires_at is not None and remote.expires_at <= now
    context = {
        "project": project,
        "is_admin": admin,
        "can_decide": admin and project.status in DECIDABLE,
        "comment_form": CommentForm(),
        "tables": tables,
        "remote_tables": remote_tables,
        "events": project.events.all(),
        "site_party": settings.SITE_PARTY_ID,
        "policy_names": list(services.POLICY_FIELDS),
        "members": membership.members_of(project),
        "project_jobs": visible_jobs(request.user).filter(project=project).select_related("created_by")[:20],
        "can_start_jobs": request.user.can_write and project.is_active,
    }
    if admin:
        context["member_form"] = member_form or MemberForm(project=project)
        context["job_settings_form"] = JobSettingsForm(initial={"approve_partner_jobs": project.approve_partner_jobs,
                                                                 "gate_decider": project.gate_decider,
                                                                 "auto_confirm_models": project.auto_confirm_models})
    if admin and project.is_active:
        context["authorise_form"] = authorise_form or AuthoriseForm(user=request.user)
    return render(request, "projects/detail.html", context, status=status)


@login_required
def project_detail(request, pk):
    return _detail_page(request, _project(request, pk))


@login_required
@require_POST
def project_job_settings(request, pk):
    project = _project(request, pk)
    form = JobSettingsForm(request.POST)
    if form.is_valid():
        _service_call(request, lambda: job_services.update_job_settings(
            user=request.user, project=project, request=request, **form.cleaned_data), _("The job settings are saved."))
    else:
        messages.error(request, _("Choose who continues a paused job."))
    return redirect("projects:detail", pk=project.pk)


TRANSITIONS = {
    "accept": (services.accept, gettext_lazy("You accepted the invitation. The partner is being told.")),
    "reject": (services.reject, gettext_lazy("You rejected the invitation. The partner is being told.")),
    "suspend": (services.suspend, gettext_lazy("The project is suspended: no work can run until it is resumed.")),
    "resume": (services.resume, gettext_lazy("This site's suspension is lifted. Work runs again once no suspension remains.")),
    "revoke": (services.revoke, gettext_lazy("The project is revoked. This cannot be undone.")),
    "rotate": (services.rotate_token, gettext_lazy("A new cooperation token was issued and is being sent to the partner.")),
}


@login_required
@require_POST
def project_transition(request, pk, action):
    project = _project(request, pk)
    fn, success = TRANSITIONS[action]
    kwargs = {}
    if action != "rotate":
        form = CommentForm(request.POST)
        kwargs["comment"] = form.cleaned_data["comment"].strip() if form.is_valid() else ""
    _service_call(request, lambda: fn(user=request.user, project=project, request=request, **kwargs), str(success))
    return redirect("projects:detail", pk=project.pk)


@login_required
@require_POST
def table_authorise(request, pk):
    project = _project(request, pk)
    form = AuthoriseForm(request.POST, user=request.user)
    if not form.is_valid() and request.user.is_site_admin:
        messages.error(request, _("The table was not authorised: some values need fixing (see below)."))
        return _detail_page(request, project, authorise_form=form, status=400)
    # Anyone else goes on to the service, which refuses in its own words.
    _service_call(
        request,
        lambda: services.authorise_table(
            user=request.user, project=project, dataset=form.cleaned_data.get("dataset"),
            expires_at=form.cleaned_data.get("expires_at"),
            policy=form.policy(), request=request,
        ),
        _("The table is now part of the project. The partner sees its name, size and columns."),
    )
    return redirect("projects:detail", pk=project.pk)


def _live_table(project, table_id):
    return get_object_or_404(project.tables.select_related("dataset"), pk=table_id, revoked_at__isnull=True)


@login_required
@require_POST
def table_policy(request, pk, table_id):
    project = _project(request, pk)
    table = _live_table(project, table_id)
    form = PolicyForm(request.POST, prefix=f"t{table.pk}")
    if not form.is_valid() and request.user.is_site_admin:
        messages.error(request, _("The rules were not saved: some values need fixing (see below)."))
        return _detail_page(request, project, policy_forms={table.pk: form}, status=400)
    _service_call(
        request,
        lambda: services.update_policy(user=request.user, table=table, policy=form.policy(), request=request),
        _("The rules for “%(name)s” were saved.") % {"name": table.dataset.name},
    )
    return redirect("projects:detail", pk=project.pk)


@login_required
@require_POST
def table_remove(request, pk, table_id):
    project = _project(request, pk)
    table = _live_table(project, table_id)
    _service_call(
        request,
        lambda: services.remove_table(user=request.user, table=table, request=request),
        _("“%(name)s” was removed from the project. The partner can no longer use it.") % {"name": table.dataset.name},
    )
    return redirect("projects:detail", pk=project.pk)


@login_required
@require_POST
def table_move(request, pk, table_id):
    project = _project(request, pk)
    table = _live_table(project, table_id)
    version = request.POST.get("version", "")
    _service_call(
        request,
        lambda: services.move_to_version(user=request.user, table=table, version=int(version) if version.isdigit() else 0,
                                         request=request),
        _("The project now uses version %(n)s of “%(name)s”. The partner is being told.") % {"n": version, "name": table.dataset.name},
    )
    return redirect("projects:detail", pk=project.pk)


# --- Who is in a project --------------------------------------------------------------

class _CandidateField(forms.ModelChoiceField):
    def label_from_instance(self, user):
        name = user.get_full_name()
        return f"{user.username} — {name}, {user.get_role_display()}" if name else f"{user.username} — {user.get_role_display()}"


class MemberForm(forms.Form):
    # Kept beside its two views because projects/forms.py is being changed elsewhere; move it there later.
    user = _CandidateField(
        label=gettext_lazy("Person"), queryset=None, empty_label=gettext_lazy("Choose someone…"),
        error_messages={"invalid_choice": gettext_lazy("Choose someone from the list.")},
    )

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = membership.candidates(project)


@login_required
@require_POST
def member_add(request, pk):
    project = _project(request, pk)
    form = MemberForm(request.POST, project=project)
    if not form.is_valid() and request.user.is_site_admin:
        messages.error(request, _("Nobody was added: choose someone from the list."))
        return _detail_page(request, project, member_form=form, status=400)
    # Anyone else goes on to the service, which refuses them (403).
    user = form.cleaned_data.get("user")
    try:
        membership.add_member(by=request.user, project=project, user=user, request=request)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(name)s can now see this project.") % {"name": user.username})
    return redirect("projects:detail", pk=project.pk)


@login_required
@require_POST
def member_remove(request, pk, user_id):
    project = _project(request, pk)
    member = get_object_or_404(membership.members_of(project), user_id=user_id)
    membership.remove_member(by=request.user, project=project, user=member.user, request=request)
    messages.success(request, _("%(name)s no longer sees this project.") % {"name": member.user.username})
    return redirect("projects:detail", pk=project.pk)
