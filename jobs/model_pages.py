"""What the model registry's pages show: a project's models, one version, versions side by side,
the reconciliation of online scoring with the partner, and the export and import of this site's
half of a model as a signed bundle (``jobs.bundles``).

Plain data for the templates (``frontend/templates/jobs/models/``); the views in
``jobs/views/models.py`` only read the request and call the services (``jobs.registry``,
``jobs.serving``, ``jobs.ledger``, ``jobs.bundles``). Figures come from the evaluation node of each model's
job at this site (the label holder's: the partner's site keeps its own figures), and
charts use the shapes of ``jobs/presenters.py``, drawn by ``frontend/static/frontend/charts.js``.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

from django import forms
from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import ledger, listing, pipelines, presenters, registry
from .models import Model, ModelStatus, ScoringOutcome, ServingTable, Task

# How far back the reconciliation page lists days.
SCORING_DAYS = 90


# --- Words ------------------------------------------------------------------------------------

def component_words(component: str) -> str:
    words = {"hetero_lr": _("Logistic regression"), "hetero_secureboost": _("SecureBoost trees")}
    return words.get(component, component)


def role_words(role: str) -> str:
    return {"guest": _("Label holder"), "host": _("Feature holder")}.get(role, role)


def other_role(role: str) -> str:
    return "host" if role == "guest" else "guest"


def outcome_words(outcome: str) -> str:
    try:
        return ScoringOutcome(outcome).label
    except ValueError:
        return outcome or "—"


LINE_WORDS = {
    ledger.MATCHED: lambda: _("Matched"),
    ledger.MISMATCH: lambda: _("The two sites disagree"),
    ledger.ONLY_HERE: lambda: _("Only this site logged it"),
    ledger.ONLY_THERE: lambda: _("Only the partner logged it"),
}


def parse_ids(values) -> list[uuid.UUID]:
    """The model ids of a query string, malformed ones dropped, each once, in the order given."""
    out: list[uuid.UUID] = []
    for value in values:
        try:
            pk = uuid.UUID(str(value))
        except ValueError:
            continue
        if pk not in out:
            out.append(pk)
    return out


def parse_day(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value or ""))
    except ValueError:
        return None


# --- Figures from the evaluation node ---------------------------------------------------------

def _evaluation_node_of(model: Model) -> str | None:
    """The evaluation node that measured this model: the one scoring rows with it, else the job's first."""
    nodes = [n for n in (model.job.spec or {}).get("nodes", []) if isinstance(n, dict)] if model.job else []
    by_id = {n.get("id"): n for n in nodes}
    evaluations = [n for n in nodes if n.get("component") == "evaluation"]
    for node in evaluations:
        source = ((node.get("inputs") or {}).get("data") or {})
        scorer = by_id.get(source.get("node")) if isinstance(source, dict) and "job" not in source else None
        model_ref = ((scorer or {}).get("inputs") or {}).get("model")
        if isinstance(model_ref, dict) and model_ref.get("node") == model.node and "job" not in model_ref:
            return node.get("id")
    return evaluations[0].get("id") if evaluations else None


def evaluation_tasks(models: list[Model]) -> dict[uuid.UUID, Task]:
    """Per model, our finished task of its job's evaluation node (when there is one)."""
    wanted = {m.pk: (m.job_id, _evaluation_node_of(m)) for m in models if m.job_id}
    wanted = {pk: key for pk, key in wanted.items() if key[1]}
    if not wanted:
        return {}
    tasks = Task.objects.filter(job_id__in={job for job, _node in wanted.values()}, site=Task.OURS,
                                component="evaluation").select_related("job")
    by_key = {(t.job_id, t.node): t for t in tasks}
    return {pk: by_key[key] for pk, key in wanted.items() if key in by_key}


def _reports(task: Task | None) -> list[tuple[str, str, dict]]:
    """The scored tables of an evaluation task: (port, label, report), validation rows first."""
    if task is None:
        return []
    final = (task.metrics or {}).get("final")
    if not isinstance(final, dict):
        return []
    labels = {"data": _("Validation rows"), "compare": _("Comparison rows")}
    out = [(port, labels[port], final[port]) for port in ("data", "compare") if isinstance(final.get(port), dict)]
    if not out:
        report = listing.evaluation_report(final)
        if report is not None:
            out.append(("data", _("Validation rows"), report))
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def headline(task: Task | None) -> dict:
    """Validation AUC and KS (None when unknown)."""
    reports = _reports(task)
    first = reports[0][2] if reports else {}
    return {"auc": _number(first.get("auc")), "ks": _number(first.get("ks"))}


MEASURES = (("auc", "metric"), ("ks", "metric"), ("ks_threshold", "score"), ("average_precision", "metric"),
            ("n", "int"), ("n_positive", "int"), ("rmse", "num"), ("mae", "num"), ("r2", "num"))


def _measure_titles() -> dict[str, str]:
    return {"auc": _("AUC"), "ks": _("KS"), "ks_threshold": _("KS reached at score"),
            "average_precision": _("Average precision"), "n": _("Rows"), "n_positive": _("Events (label 1)"),
            "rmse": _("RMSE"), "mae": _("MAE"), "r2": _("R²")}


def metrics_table(task: Task | None) -> dict:
    """The figures of each scored table, one row per measure: {"columns": [labels], "rows": [...]}"""
    reports = _reports(task)
    titles = _measure_titles()
    rows = []
    for key, fmt in MEASURES:
        values = [_number(r.get(key)) for _p, _l, r in reports]
        if any(v is not None for v in values):
            rows.append({"key": key, "title": titles[key], "format": fmt, "values": values})
    return {"columns": [label for _p, label, _r in reports], "rows": rows}


def roc_chart(model: Model, task: Task | None) -> dict | None:
    """The ROC chart of the version's evaluation, as the job page draws it."""
    if task is None or task.status not in ("succeeded", "reused"):
        return None
    view = presenters._View(task.job, task, None)
    try:
        presenters.present_evaluation(view)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ZeroDivisionError):
        return None
    chart = next((c for c in view.charts if c["id"] == f"{task.node}-roc"), None)
    if chart is not None:
        chart["id"] = f"model-{model.pk.hex[:8]}-roc"
    return chart


def overlaid_roc(models: list[Model], tasks: dict) -> dict | None:
    """One ROC chart with a curve per version (their validation rows)."""
    from datasets.services import download_filename

    series, rows = [], []
    aucs = []
    for model in models:
        reports = _reports(tasks.get(model.pk))
        roc = reports[0][2].get("roc") if reports else None
        if not isinstance(roc, dict) or not roc.get("fpr"):
            continue
        points = [[x, y] for x, y in zip(roc["fpr"], roc.get("tpr") or [])]
        series.append({"label": model.label, "data": points})
        rows += [[model.label, t, x, y] for (x, y), t in zip(points, roc.get("thresholds") or [None] * len(points))]
        aucs.append(presenters._fact(_("AUC") + " · " + model.label, reports[0][2].get("auc"), "metric"))
    if not series:
        return None
    series.append({"label": _("Random guess"), "data": [[0, 0], [1, 1]], "style": "reference"})
    col = presenters._col
    return {"id": "compare-roc", "kind": "xy", "title": _("ROC curves of the versions"),
            "description": _("Validation rows of each version. The curve closest to the top left separates events "
                             "from non-events best; the diagonal is guessing."),
            "x_label": _("Non-events flagged"), "y_label": _("Events caught"), "labels": [], "series": series,
            "options": presenters._unit_axes(), "highlights": aucs,
            "table": {"columns": [col("version", _("Version"), "text"), col("threshold", _("Threshold"), "score"),
                                  col("fpr", _("False positive rate"), "pct"),
                                  col("tpr", _("True positive rate"), "pct")], "rows": rows},
            "filename": download_filename("roc-" + "-".join(f"v{m.number}" for m in models) + ".csv")}


# --- Parameters in words ----------------------------------------------------------------------

def _schema(component: str) -> dict:
    from fedweb.i18n import translate_schema

    try:
        return translate_schema({"properties": pipelines.properties(component)}).get("properties", {})
    except Exception:  # noqa: BLE001 - a component this site no longer knows: the names as they are
        return {}


def _value_words(value: Any, schema: dict) -> str:
    from fedweb.i18n import ENUM_LABELS

    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(_value_words(v, {}) for v in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_value_words(v, {})}" for k, v in sorted(value.items())) or "—"
    labels = schema.get(ENUM_LABELS) or {}
    if isinstance(value, str) and value in labels:
        return labels[value]
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _param_title(name: str, schema: dict) -> str:
    return schema.get("title") or name


def parameter_rows(model: Model) -> list[dict]:
    schema = _schema(model.component)
    order = list(schema)
    keys = sorted(model.params or {}, key=lambda k: (order.index(k) if k in order else len(order), k))
    return [{"name": k, "title": _param_title(k, schema.get(k, {})), "value": _value_words(model.params[k],
                                                                                           schema.get(k, {}))}
            for k in keys]


# --- A project's models -------------------------------------------------------------------------

def project_models(project, *, archived: bool = False) -> dict:
    """Every model name of the project with its versions (newest first), archived ones only if asked."""
    models = list(Model.objects.filter(project=project).select_related("job").order_by("name", "-number"))
    hidden = sum(1 for m in models if m.archived_at is not None)
    shown = [m for m in models if archived or m.archived_at is None]
    tasks = evaluation_tasks(shown)
    groups: dict[str, dict] = {}
    for model in shown:
        group = groups.setdefault(model.name or model.component, {"name": model.name or model.component,
                                                                  "versions": []})
        group["versions"].append({"model": model, "component": component_words(model.component),
                                  "status": model.status, "status_words": model.get_status_display(),
                                  **headline(tasks.get(model.pk))})
    return {"groups": list(groups.values()), "archived_count": hidden, "showing_archived": archived,
            "count": len(shown)}


def overview(user) -> list[dict]:
    """For the site-wide Models page: per project the user sees, its model names with their latest
    version, how many versions there are and which are published."""
    models = list(registry.visible_models(user).filter(archived_at__isnull=True)
                  .select_related("project__partner").order_by("project__name", "name", "-number"))
    projects: dict = {}
    for model in models:
        entry = projects.setdefault(model.project_id, {"project": model.project, "names": {}})
        name = entry["names"].setdefault(model.name or model.component, {
            "name": model.name or model.component, "latest": model, "component": component_words(model.component),
            "versions": 0, "published": []})
        name["versions"] += 1
        if model.is_published:
            name["published"].append(model)
    return [{"project": e["project"], "names": list(e["names"].values())} for e in projects.values()]


# --- One version --------------------------------------------------------------------------------

def _tables(model: Model) -> tuple[str, str]:
    from datasets.models import Dataset
    from projects.models import RemoteTable

    if model.job is None:
        return "", ""
    ours, theirs = pipelines.tables_of(model.job.spec or {}, model.project)
    our_name = Dataset.objects.filter(pk=ours).values_list("name", flat=True).first() if is_uuid(ours) else None
    their_name = (RemoteTable.objects.filter(project=model.project, table_id=theirs).values_list("name", flat=True)
                  .first() if theirs else None)
    return our_name or ours or "", their_name or theirs or ""


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def scoring_url(model: Model) -> str:
    try:
        return reverse("model-score", kwargs={"pk": model.pk})
    except NoReverseMatch:
        return f"/api/models/{model.pk}/score/"


def version_page(model: Model, user) -> dict:
    from projects.models import ProjectTable

    project = model.project
    task = evaluation_tasks([model]).get(model.pk)
    partner_task = (Task.objects.filter(job_id=model.job_id, site=Task.PARTNER, node=model.node).first()
                    if model.job_id else None)
    our_table, their_table = _tables(model)
    serving = ServingTable.objects.filter(model=model).select_related("dataset", "registered_by").first()
    status = model.status
    writer = user.can_write
    context = {
        "model": model, "project": project, "status": status, "status_words": model.get_status_display(),
        "component": component_words(model.component), "our_role": role_words(model.role),
        "partner_role": role_words(other_role(model.role)), "our_table": our_table, "their_table": their_table,
        "params": parameter_rows(model), "metrics": metrics_table(task), "evaluation": task,
        "roc": roc_chart(model, task), "partner_task": partner_task, "serving": serving,
        "can_publish": writer and status == ModelStatus.DRAFT,
        "can_confirm": writer and status == ModelStatus.ASKED,
        "confirm_needs_admin": status == ModelStatus.ASKED and not user.is_site_admin,
        "can_withdraw": writer and (model.consent_here_at is not None or model.consent_partner_at is not None),
        # Archiving needs the publication withdrawn first (the service says so if asked anyway).
        "can_archive": writer and status in (ModelStatus.DRAFT, ModelStatus.ASKED),
        "can_restore": writer and status == ModelStatus.ARCHIVED,
        "show_endpoint": model.role == "guest" and model.is_published,
        "score_path": scoring_url(model),
    }
    if user.is_site_admin:
        context["serving_choices"] = [t.dataset for t in ProjectTable.objects.live().filter(project=project)
                                      .select_related("dataset").order_by("dataset__name")]
    context.update(export_panel(model, user))
    return context


# --- Versions side by side ----------------------------------------------------------------------

def compare(project, ids: list[uuid.UUID]) -> dict:
    chosen = {m.pk: m for m in Model.objects.filter(project=project, pk__in=ids).select_related("job")}
    models = [chosen[pk] for pk in ids if pk in chosen]
    tasks = evaluation_tasks(models)
    titles = _measure_titles()
    metrics = []
    for key, fmt in MEASURES:
        values = []
        for model in models:
            reports = _reports(tasks.get(model.pk))
            values.append(_number(reports[0][2].get(key)) if reports else None)
        if any(v is not None for v in values):
            best = None
            if key in ("auc", "ks", "average_precision"):
                known = [v for v in values if v is not None]
                best = max(known) if len(known) > 1 else None
            metrics.append({"title": titles[key], "format": fmt,
                            "cells": [{"value": v, "best": best is not None and v == best} for v in values]})
    schemas = {m.component: _schema(m.component) for m in models}
    names: list[str] = []
    for model in models:
        order = list(schemas[model.component])
        for name in sorted(model.params or {}, key=lambda k: (order.index(k) if k in order else len(order), k)):
            if name not in names:
                names.append(name)
    params = []
    for name in names:
        schema = next((schemas[m.component].get(name) for m in models if name in schemas[m.component]), {}) or {}
        raw = [(m.params or {}).get(name, _MISSING) for m in models]
        cells = ["—" if v is _MISSING else _value_words(v, schema) for v in raw]
        params.append({"name": name, "title": _param_title(name, schema), "cells": cells,
                       "differs": len({repr(v) for v in raw}) > 1})
    components = [component_words(m.component) for m in models]
    return {"models": models, "metrics": metrics, "params": params, "roc": overlaid_roc(models, tasks),
            "components": components, "differing": sum(1 for p in params if p["differs"])}


_MISSING = object()


# --- Reconciliation of online scoring -----------------------------------------------------------

def time_zone_name() -> str:
    return timezone.get_current_timezone_name() or settings.TIME_ZONE


def scoring_days(project) -> list[dict]:
    since = timezone.localdate() - dt.timedelta(days=SCORING_DAYS - 1)
    rows = ledger.days(project, since=since)
    labels = {m.pk: m.label for m in Model.objects.filter(project=project, pk__in={r["model_id"] for r in rows})}
    out = []
    for row in rows:
        model_id = row["model_id"]
        label = labels.get(model_id) or (_("unknown model, version %(n)s") % {"n": row["model_number"]}
                                         if row["model_number"] else _("unknown model"))
        out.append({**row, "label": label, "failed": row["requests"] - row["scored"],
                    "day_iso": row["day"].isoformat() if row["day"] else ""})
    return out


def reconciliation(project, model_id: uuid.UUID, day: dt.date) -> dict:
    result = ledger.reconcile(project, model_id, day)
    return reconciliation_of(project, model_id, result)


def reconciliation_of(project, model_id, result: ledger.Reconciliation) -> dict:
    model = Model.objects.filter(project=project, pk=model_id).first()
    problems = []
    for line in result.problems:
        problems.append({**line, "status_words": LINE_WORDS.get(line["status"], lambda: line["status"])(),
                         "our_outcome_words": outcome_words(line["our_outcome"]) if line["our_outcome"] else "—",
                         "partner_outcome_words": (outcome_words(line["partner_outcome"])
                                                   if line["partner_outcome"] else "—"),
                         "at_time": _parse_time(line.get("at"))})
    counts = {status: 0 for status in LINE_WORDS}
    for line in result.lines:
        counts[line["status"]] = counts.get(line["status"], 0) + 1
    return {"result": result, "model": model, "problems": problems, "counts": counts,
            "label": model.label if model else str(model_id),
            "partner_zone_differs": bool(result.partner_time_zone and result.partner_time_zone != time_zone_name())}


def _parse_time(value) -> dt.datetime | None:
    try:
        return timezone.localtime(dt.datetime.fromisoformat(str(value)))
    except (ValueError, TypeError):
        return None


def reconciliation_csv(project, model_id, day: dt.date) -> tuple[str, str]:
    """(file name, CSV text) of one model's day at both sites."""
    from datasets.services import download_filename

    result = ledger.reconcile(project, model_id, day)
    model = Model.objects.filter(project=project, pk=model_id).first()
    name = f"scoring-{model.name or model.component}-v{model.number}-{day.isoformat()}" if model else \
        f"scoring-{day.isoformat()}"
    return download_filename(name), ledger.as_csv(result, settings.SITE_PARTY_ID, project.partner.party_id)


# --- Moving this site's half: export and import -------------------------------------------------

def export_panel(model: Model, user) -> dict:
    """What the version page says about exporting this site's half (site admins only)."""
    from fedweb.proxy import pki

    from . import bundles

    if not user.is_site_admin:
        return {"can_export": False}
    try:
        fingerprint, certificate_problem = pki.current().fingerprint, ""
    except pki.CertificateError as exc:
        fingerprint, certificate_problem = "", str(exc)
    return {"can_export": True, "export_fingerprint": fingerprint, "export_problem": certificate_problem,
            "export_rows": bundles.SAMPLE_ROWS, "export_file_name": bundles.file_name(model)}


def export_half(model: Model, user, request=None) -> tuple[str, bytes]:
    """(file name, bytes) of this site's half as a signed bundle; ServiceError or PermissionDenied if not."""
    from . import bundles

    data = bundles.export_bundle(user=user, model=model, request=request)
    return bundles.file_name(model), data


class ImportForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Bundle file"),
                           help_text=gettext_lazy("A .fedweb-model.json file exported by a site admin of a FedWeb "
                                                  "site."),
                           widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json"}))
    signer_fingerprint = forms.CharField(
        label=gettext_lazy("Signer's certificate fingerprint (optional)"), required=False, max_length=200,
        help_text=gettext_lazy("Needed only when the bundle was signed by a site this site does not know: the "
                               "exporting site's admin reads it to you from the model's page, and you check it with "
                               "them by telephone or in person. Colons, spaces and capitals do not matter. A bundle "
                               "of this site or of a paired partner needs nothing here."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))


def read_upload(upload) -> bytes:
    """The uploaded file's bytes, at most one byte more than a bundle may have (the import then says it is
    too large)."""
    from . import bundles

    return upload.read(bundles.MAX_BUNDLE_BYTES + 1)


def import_half(form: ImportForm, *, user, project, request=None) -> tuple[Model, str]:
    """Import the form's bundle into ``project``: (model, what to tell the admin). Raises the import's
    ServiceError or PermissionDenied when it is refused."""
    from . import bundles

    data = read_upload(form.cleaned_data["file"])
    model = bundles.import_bundle(data, user=user, project=project,
                                  signer_fingerprint=form.cleaned_data.get("signer_fingerprint") or "",
                                  request=request)
    if getattr(model, "already_here", False):
        return model, _("%(model)s is already here with the same half: nothing changed.") % {"model": model.label}
    return model, _("%(model)s is imported: its half passed the signature and the prediction-consistency check. "
                    "It starts unpublished.") % {"model": model.label}
