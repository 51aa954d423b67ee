"""Browser pages for datasets. Each view parses the request and calls one service."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from fedweb.api.errors import ServiceError

from . import services
from .charts import histogram_svg
from .forms import GrantForm, MetadataForm, RereadForm, UploadForm, VersionForm
from .models import ColumnType, DatasetGrant


def _wants_json(request) -> bool:
    return request.headers.get("X-Requested-With") == "XMLHttpRequest"


@login_required
def dataset_list(request):
    query = (request.GET.get("q") or "").strip()
    return render(
        request,
        "datasets/list.html",
        {"rows": services.dataset_rows(request.user, query), "form": UploadForm(), "q": query,
         "max_mb": services.max_upload_mb()},
    )


def _upload_answer(request, form, upload, *, back: str):
    """Answer a browser upload (a new dataset or a new version) the same way: the new page to
    open (JSON for the page's progress bar, or a redirect), else the problem in words."""
    error = None
    if getattr(request, "upload_too_large", False):
        error = _("The file is larger than the %(mb)d MB limit.") % {"mb": services.max_upload_mb()}
    elif not form.is_valid():
        error = _("Choose a CSV file to upload.")
    else:
        try:
            dataset = upload(form.cleaned_data)
        except (ServiceError, PermissionDenied) as exc:
            error = getattr(exc, "message", None) or str(exc)
        else:
            url = reverse("datasets:detail", args=[dataset.pk])
            if _wants_json(request):
                return JsonResponse({"id": str(dataset.pk), "url": url}, status=201)
            return redirect(url)
    if _wants_json(request):
        status = 413 if getattr(request, "upload_too_large", False) else 400
        return JsonResponse({"error": {"code": "upload_failed", "message": error, "details": {}}}, status=status)
    messages.error(request, error)
    return redirect(back)


@login_required
@require_POST
def dataset_upload(request):
    return _upload_answer(
        request, UploadForm(request.POST, request.FILES),
        lambda data: services.upload(user=request.user, uploaded_file=data["file"], request=request, name=data["name"],
                                     encoding=data["encoding"], delimiter=data["delimiter"]),
        back=reverse("datasets:list"),
    )


@login_required
@require_POST
def dataset_version(request, pk):
    dataset = services.get_visible(request.user, pk)
    return _upload_answer(
        request, VersionForm(request.POST, request.FILES),
        lambda data: services.upload_version(user=request.user, dataset=dataset, uploaded_file=data["file"],
                                             encoding=data["encoding"], delimiter=data["delimiter"], request=request),
        back=reverse("datasets:detail", args=[dataset.pk]),
    )


def _column_rows(dataset):
    stats = {c["name"]: c for c in (dataset.stats or {}).get("columns", [])}
    rows = []
    for column in dataset.columns:
        s = stats.get(column["name"], {})
        hist = s.get("histogram")
        rows.append({**column, "stats": s, "chart": histogram_svg(hist) if hist else ""})
    return rows


@login_required
def dataset_detail(request, pk):
    dataset = services.get_visible(request.user, pk)
    manage = services.can_manage(request.user, dataset)
    versions = list(services.versions_of(dataset))
    context = {
        "dataset": dataset,
        "can_manage": manage,
        "versions": versions,
        "newest": versions[-1] if versions else dataset,
        "newest_ready": next((v for v in reversed(versions) if v.is_ready), None),
        "version_form": VersionForm(initial={"encoding": dataset.encoding, "delimiter": dataset.delimiter}) if manage else None,
        "same_name": services.same_name(request.user, dataset),
        "used_in": services.projects_using(request.user, dataset),
        "max_mb": services.max_upload_mb(),
        "columns": _column_rows(dataset),
        "column_types": ColumnType.choices,
        "reread_form": RereadForm(initial={"encoding": dataset.encoding, "delimiter": dataset.delimiter}),
        "meta_form": MetadataForm(initial={"name": dataset.name, "description": dataset.description, "tags": ", ".join(dataset.tags)}),
    }
    if dataset.is_ready:
        try:
            context["preview"] = services.preview(user=request.user, dataset=dataset)
        except ServiceError:
            context["preview"] = None
    if request.user.is_site_admin:
        context["grants"] = services.grants_of(dataset)
        context["grant_form"] = GrantForm(dataset=dataset)
    return render(request, "datasets/detail.html", context)


@login_required
def dataset_status(request, pk):
    """Polled by the detail page while a dataset is being checked."""
    dataset = services.get_visible(request.user, pk)
    if not dataset.is_busy:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return render(request, "datasets/_status.html", {"dataset": dataset})


def _service_call(request, fn, success: str):
    try:
        fn()
        messages.success(request, success)
    except ServiceError as exc:
        detail = "; ".join(str(m) for msgs in exc.details.values() for m in (msgs if isinstance(msgs, list) else [msgs]))
        messages.error(request, f"{exc.message} {detail}".strip())
    except PermissionDenied as exc:
        messages.error(request, str(exc) or _("You are not allowed to do this."))


@login_required
@require_POST
def dataset_columns(request, pk):
    dataset = services.get_visible(request.user, pk)
    uses = {c["name"]: request.POST.get(f"use:{c['name']}", "ignored") for c in dataset.columns}
    ids = [name for name, use in uses.items() if use == "id"]
    labels = [name for name, use in uses.items() if use == "label"]
    if len(ids) != 1 or len(labels) > 1:
        messages.error(request, _("Choose exactly one id column and at most one label column."))
        return redirect("datasets:detail", pk=dataset.pk)
    id_column, label_column = ids[0], (labels[0] if labels else "")
    features = {name: use for name, use in uses.items() if use in ColumnType.values}
    _service_call(
        request,
        lambda: services.change_schema(
            user=request.user, dataset=dataset, id_column=id_column, label_column=label_column, features=features, request=request
        ),
        _("The new column choices are being applied."),
    )
    return redirect("datasets:detail", pk=dataset.pk)


@login_required
@require_POST
def dataset_reread(request, pk):
    dataset = services.get_visible(request.user, pk)
    form = RereadForm(request.POST)
    form.is_valid()
    _service_call(
        request,
        lambda: services.revalidate(
            user=request.user, dataset=dataset, encoding=form.cleaned_data.get("encoding", ""),
            delimiter=form.cleaned_data.get("delimiter", ""), request=request,
        ),
        _("The file is being read again."),
    )
    return redirect("datasets:detail", pk=dataset.pk)


@login_required
@require_POST
def dataset_edit(request, pk):
    dataset = services.get_visible(request.user, pk)
    form = MetadataForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("A dataset needs a name."))
    else:
        _service_call(request, lambda: services.update_metadata(user=request.user, dataset=dataset, request=request, **form.cleaned_data), _("Saved."))
    return redirect("datasets:detail", pk=dataset.pk)


@login_required
@require_POST
def dataset_delete(request, pk):
    dataset = services.get_visible(request.user, pk)
    try:
        services.delete(user=request.user, dataset=dataset, request=request)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return redirect("datasets:detail", pk=dataset.pk)
    messages.success(request, _("Dataset “%(name)s” was deleted.") % {"name": dataset.name})
    return redirect("datasets:list")


@login_required
def dataset_download(request, pk):
    dataset = services.get_visible(request.user, pk)
    try:
        filename, chunks = services.download(user=request.user, dataset=dataset, request=request)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("datasets:detail", pk=dataset.pk)
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    return response


@login_required
@require_POST
def dataset_grant(request, pk):
    if not request.user.is_site_admin:
        raise PermissionDenied
    dataset = services.get_visible(request.user, pk)
    form = GrantForm(request.POST, dataset=dataset)
    if not form.is_valid():
        messages.error(request, _("Choose a user (and, optionally, an end date in the future)."))
    else:
        _service_call(
            request,
            lambda: services.grant(by=request.user, dataset=dataset, user=form.cleaned_data["user"], expires_at=form.cleaned_data["expires_at"], request=request),
            _("%(user)s can now use this dataset.") % {"user": form.cleaned_data["user"].username},
        )
    return redirect("datasets:detail", pk=dataset.pk)


@login_required
@require_POST
def dataset_revoke(request, pk, grant_id):
    if not request.user.is_site_admin:
        raise PermissionDenied
    dataset = services.get_visible(request.user, pk)
    grant = get_object_or_404(DatasetGrant, pk=grant_id, dataset_id=dataset.lineage_id)
    services.revoke(by=request.user, grant=grant, request=request)
    messages.success(request, _("Access for %(user)s was revoked.") % {"user": grant.user.username})
    return redirect("datasets:detail", pk=dataset.pk)
