"""One job in the browser: the new-job form, the job page and its actions, retune and sweep.

Thin: each view reads a form and calls a service (``jobs.services``, ``jobs.results``,
``jobs.sweeps``); what the pages show is prepared in ``jobs.display``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from datasets.views import _service_call
from fedweb.api.errors import ServiceError
from projects.services import visible_projects

from .. import display, presenters, results, services, sweeps
from ..forms import PipelineForm, SweepForm
from ..models import Job, Sweep
from ..pipelines import PIPELINES
from ..templates import TEMPLATES


def _job(request, pk) -> Job:
    return get_object_or_404(services.visible_jobs(request.user), pk=pk)


def _project(request, pk):
    return get_object_or_404(visible_projects(request.user).select_related("partner"), pk=pk)


def _service_errors(form, exc: ServiceError) -> None:
    form.add_error(None, exc.message)
    for key, msgs in (exc.details or {}).items():
        for msg in msgs if isinstance(msgs, list) else [msgs]:
            form.add_error(None, f"{key}: {msg}")


# --- New job -----------------------------------------------------------------------------

@login_required
def job_new(request, pk):
    project = _project(request, pk)
    if not request.user.can_write:
        raise PermissionDenied(_("Viewers cannot start jobs."))
    template = request.GET.get("template", "")
    if template not in TEMPLATES:
        return render(request, "jobs/new_choose.html", {"project": project, "templates": TEMPLATES.values()})
    form = PipelineForm(template, project, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = display.launch(user=request.user, project=project, form=form, request=request)
        except ServiceError as exc:
            _service_errors(form.head, exc)
        else:
            messages.success(request, _("The job was sent to %(partner)s.") % {"partner": project.partner.name})
            return redirect("jobs:detail", pk=job.pk)
    return render(request, "jobs/new.html", {"project": project, "form": form, "preview": display.preview(form),
                                             "template": TEMPLATES[template]})


@login_required
@require_POST
def job_preview(request, pk):
    """The graph and estimate of the form as it stands (the form posts here whenever it changes)."""
    project = _project(request, pk)
    template = request.GET.get("template", "")
    if template not in PIPELINES and template != "score":
        raise Http404
    job = _job(request, request.GET["job"]) if request.GET.get("job") else None
    form = PipelineForm(template, project, request.POST, job=job)
    return render(request, "jobs/_preview.html", {"preview": display.preview(form)})


# --- The job page --------------------------------------------------------------------------

@login_required
def job_detail(request, pk):
    job = _job(request, pk)
    context = display.job_page(job, request.user)
    context["results"] = presenters.job_results(job, request.user)
    return render(request, "jobs/detail.html", context)


# action -> (service, message on success, whether it takes a reason the partner sees)
ACTIONS = {
    "cancel": (services.cancel, gettext_lazy("The job is stopping at both sites."), False),
    "resume": (services.resume, gettext_lazy("The job goes on from where it stopped."), False),
    "approve": (services.approve, gettext_lazy("You approved the job; it starts now at both sites."), False),
    "refuse": (services.refuse, gettext_lazy("You refused the job; the partner sees your reason."), True),
    "continue": (services.continue_job, gettext_lazy("The job continues after the overlap."), False),
    "stop": (services.stop_at_gate, gettext_lazy("The job was stopped after the overlap."), True),
}


@login_required
@require_POST
def job_action(request, pk, action):
    job = _job(request, pk)
    fn, success, with_reason = ACTIONS[action]
    kwargs = {"reason": request.POST.get("reason", "").strip()[:1000]} if with_reason else {}
    _service_call(request, lambda: fn(user=request.user, job=job, request=request, **kwargs), str(success))
    return redirect("jobs:detail", pk=job.pk)


@login_required
def node_log(request, pk, node):
    job = _job(request, pk)
    try:
        text = results.task_log(job, node)
    except ServiceError as exc:
        return HttpResponse(exc.message, status=exc.status_code, content_type="text/plain; charset=utf-8")
    return HttpResponse(text or _("Nothing logged yet."), content_type="text/plain; charset=utf-8")


@login_required
def node_download(request, pk, node):
    job = _job(request, pk)
    try:
        filename, chunks = results.output_table(user=request.user, job=job, node=node,
                                                port=request.GET.get("port", "data"), request=request)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("jobs:detail", pk=job.pk)
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


# --- Retune and sweep ----------------------------------------------------------------------

@login_required
def job_rerun(request, pk):
    job = _job(request, pk)
    if job.template not in PIPELINES:
        raise Http404
    form = PipelineForm(job.template, job.project, request.POST or None, job=job)
    if request.method == "POST" and form.is_valid():
        try:
            rerun = results.rerun(user=request.user, job=job, changes=form.changes(), request=request,
                                  name=form.head.cleaned_data["name"])
        except (ServiceError, PermissionDenied) as exc:
            form.head.add_error(None, getattr(exc, "message", None) or str(exc))
        else:
            display.remember_estimate(rerun)
            messages.success(request, _("The changed job was sent; unchanged steps are reused."))
            return redirect("jobs:detail", pk=rerun.pk)
    return render(request, "jobs/rerun.html", {"job": job, "project": job.project, "form": form,
                                               "preview": display.preview(form)})


@login_required
def job_sweep(request, pk):
    job = _job(request, pk)
    if job.template not in PIPELINES:
        raise Http404
    form = SweepForm(job, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sweep = sweeps.create(user=request.user, job=job, axes=form.axes(), request=request)
        except (ServiceError, PermissionDenied) as exc:
            form.add_error(None, getattr(exc, "message", None) or str(exc))
        else:
            for started in sweep.jobs.all():
                display.remember_estimate(started)
            messages.success(request, _("%(n)s jobs were started.") % {"n": sweep.jobs.count()})
            return redirect("jobs:sweep_detail", pk=sweep.pk)
    return render(request, "jobs/sweep_new.html", {"job": job, "form": form})


@login_required
def sweep_detail(request, pk):
    sweep = get_object_or_404(Sweep.objects.filter(project__in=visible_projects(request.user)), pk=pk)
    return render(request, "jobs/sweep.html", {"sweep": sweep, "rows": sweeps.comparison(sweep),
                                               "axes": display.axis_titles(sweep)})
