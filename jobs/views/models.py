"""The model registry in the browser: a project's models, one version and its publication,
versions side by side, the reconciliation of online scoring with the partner, and moving this
site's half of a model as a signed bundle (export and import, site admins only).

Thin: each view reads the request and calls a service (``jobs.registry``, ``jobs.serving``,
``jobs.ledger``, ``jobs.bundles``); what the pages show is prepared in ``jobs.model_pages``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from datasets.views import _service_call
from fedweb.api.errors import ServiceError
from projects.services import visible_projects

from .. import model_pages, registry, serving


def _project(request, pk):
    return get_object_or_404(visible_projects(request.user).select_related("partner"), pk=pk)


def _model(request, pk):
    return get_object_or_404(registry.visible_models(request.user).select_related("project__partner", "job",
                                                                                   "artifact"), pk=pk)


@login_required
def overview(request):
    return render(request, "jobs/models/overview.html", {"projects": model_pages.overview(request.user)})


@login_required
def project_models(request, project_id):
    project = _project(request, project_id)
    context = model_pages.project_models(project, archived=request.GET.get("archived") == "1")
    return render(request, "jobs/models/list.html", {"project": project, **context})


@login_required
def model_detail(request, pk):
    model = _model(request, pk)
    context = model_pages.version_page(model, request.user)
    context["score_url"] = request.build_absolute_uri(context["score_path"])
    return render(request, "jobs/models/detail.html", context)


# action -> (service, message on success)
ACTIONS = {
    "publish": (registry.publish, gettext_lazy("Publication asked: the partner's site confirms it.")),
    "archive": (registry.archive, gettext_lazy("The version is archived: it is hidden from the list of models.")),
    "restore": (registry.restore, gettext_lazy("The version is restored.")),
}


@login_required
@require_POST
def model_action(request, pk, action):
    model = _model(request, pk)
    service, success = ACTIONS[action]
    if action == "publish" and model.consent_partner_at is not None:
        success = _("You confirmed the publication: the model scores once both sites hold it published.")
    _service_call(request, lambda: service(user=request.user, model=model, request=request), str(success))
    return redirect("registry:model", pk=model.pk)


@login_required
@require_POST
def model_unpublish(request, pk):
    model = _model(request, pk)
    reason = request.POST.get("reason", "").strip()[:500]
    _service_call(request, lambda: registry.unpublish(user=request.user, model=model, reason=reason, request=request),
                  _("The publication is withdrawn: the model no longer scores at either site."))
    return redirect("registry:model", pk=model.pk)


@login_required
@require_POST
def model_serving_table(request, pk):
    from datasets.models import Dataset

    model = _model(request, pk)
    chosen = request.POST.get("dataset", "")
    dataset = Dataset.objects.filter(pk=chosen).first() if model_pages.is_uuid(chosen) else None
    if dataset is None and request.user.is_site_admin:
        messages.error(request, _("Choose one of the project's tables."))
    else:
        _service_call(request, lambda: serving.register_serving_table(user=request.user, model=model, dataset=dataset,
                                                                       request=request),
                      _("The serving table is registered: online scoring looks rows up in it."))
    return redirect("registry:model", pk=model.pk)


@login_required
def compare(request, project_id):
    project = _project(request, project_id)
    ids = model_pages.parse_ids(request.GET.getlist("ids"))
    context = model_pages.compare(project, ids)
    return render(request, "jobs/models/compare.html", {"project": project, **context})


@login_required
def scoring(request, project_id):
    project = _project(request, project_id)
    context = {"project": project, "days": model_pages.scoring_days(project),
               "time_zone": model_pages.time_zone_name(), "chosen": None, "day_span": model_pages.SCORING_DAYS}
    model_id = model_pages.parse_ids([request.GET.get("model", "")])
    day = model_pages.parse_day(request.GET.get("day"))
    if model_id and day:
        context["chosen"] = model_pages.reconciliation(project, model_id[0], day)
        context["csv_query"] = urlencode({"model": str(model_id[0]), "day": day.isoformat()})
    elif request.GET.get("model") or request.GET.get("day"):
        messages.error(request, _("Choose a model and a day (YYYY-MM-DD) to reconcile."))
    return render(request, "jobs/models/scoring.html", context)


@login_required
def scoring_csv(request, project_id):
    project = _project(request, project_id)
    model_id = model_pages.parse_ids([request.GET.get("model", "")])
    day = model_pages.parse_day(request.GET.get("day"))
    if not (model_id and day):
        if request.GET.get("model") or request.GET.get("day"):
            messages.error(request, _("Choose a model and a day (YYYY-MM-DD) to reconcile."))
        return redirect("registry:scoring", project_id=project.pk)
    try:
        filename, text = model_pages.reconciliation_csv(project, model_id[0], day)
    except (ServiceError, PermissionDenied) as exc:
        messages.error(request, getattr(exc, "message", None) or str(exc))
        return redirect(reverse("registry:scoring", kwargs={"project_id": project.pk}) + "?" +
                        urlencode({"model": str(model_id[0]), "day": day.isoformat()}))
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@login_required
@require_POST
def model_export(request, pk):
    model = _model(request, pk)
    if not request.user.is_site_admin:
        raise PermissionDenied(_("Only a site admin exports a model."))
    try:
        filename, data = model_pages.export_half(model, request.user, request=request)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("registry:model", pk=model.pk)
    response = HttpResponse(data, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@login_required
def model_import(request, project_id):
    project = _project(request, project_id)
    if not request.user.is_site_admin:
        raise PermissionDenied(_("Only a site admin imports a model."))
    form = (model_pages.ImportForm(request.POST, request.FILES) if request.method == "POST"
            else model_pages.ImportForm())
    refusal = ""
    if request.method == "POST" and form.is_valid():
        try:
            model, said = model_pages.import_half(form, user=request.user, project=project, request=request)
        except ServiceError as exc:
            refusal = exc.message
        except PermissionDenied as exc:
            refusal = str(exc) or _("You are not allowed to do this.")
        else:
            messages.success(request, said)
            return redirect("registry:model", pk=model.pk)
    return render(request, "jobs/models/import.html", {"project": project, "form": form, "refusal": refusal},
                  status=400 if refusal else 200)
