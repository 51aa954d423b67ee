"""Templates: the common job specs, built from a few choices an analyst makes in a form.

Each template takes the two tables (ours and the partner's, by dataset id; the roles
follow the project's label holder) and a handful of options, and returns a spec that
``jobs.spec.validate`` accepts. The id and label columns come from the tables'
schemas, so nobody types them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .spec import FORMAT, our_role


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    description: str
    options: dict  # option -> (default, description)


# Stop once the overlap is known, until the project's decider says whether to go on (a PSI-only
# job has nothing after the overlap to hold back, so its template has no such option).
PAUSE_AFTER_PSI = (False, "pause after the overlap until someone decides whether to go on")
PSI_PROTOCOL = ("ecdh", "how the overlap is found: ecdh (every privacy option) or rr22 (oblivious transfer, many "
                        "times faster on large tables, where the partner's table allows it)")

TEMPLATES = {
    "psi": Template("psi", _("Find the overlap (PSI only)"),
                    _("Private set intersection of the two tables; who learns the overlap follows the tables' policies."),
                    {"reveal": ("both", "both, guest (the label holder only) or cardinality (the count only)"),
                     "protocol": PSI_PROTOCOL}),
    "lr": Template("lr", _("Logistic regression model"),
                   _("Overlap → train/validation split → standard scaling → binning (WOE/IV) → feature selection → "
                     "hetero logistic regression → scoring of the validation rows → evaluation (AUC, KS, ROC)."),
                   {"learning_rate": (0.15, "step size"), "max_epochs": (10, "passes over the data"),
                    "iv_threshold": (0.02, "minimum IV to keep a feature"), "validation_fraction": (0.2, "share held out"),
                    "pause_after_psi": PAUSE_AFTER_PSI, "protocol": PSI_PROTOCOL}),
    "secureboost": Template("secureboost", _("Gradient-boosted trees (SecureBoost)"),
                            _("Overlap → split → SecureBoost trees → scoring of the validation rows → evaluation."),
                            {"n_trees": (10, "number of trees"), "max_depth": (3, "depth of each tree"),
                             "learning_rate": (0.3, "shrinkage"), "validation_fraction": (0.2, "share held out"),
                             "pause_after_psi": PAUSE_AFTER_PSI, "protocol": PSI_PROTOCOL}),
    "score": Template("score", _("Score a table with a model"),
                      _("Align a new table with the partner's and score it with a published model (with the same "
                        "preparation); scorecard points when the model has a scorecard, and an evaluation when the "
                        "new table has labels."),
                      {"model": ("", "the published model version to score with (its id)"),
                       "model_job": ("", "instead of 'model': the job that trained it"),
                       "reveal": ("both", "who learns the overlap of the new tables"), "protocol": PSI_PROTOCOL}),
}


# The step each template option sets (the API's short names for settings of the pipeline's steps).
OPTION_STEPS = {"reveal": "psi", "protocol": "psi", "validation_fraction": "split", "iv_threshold": "selection", "max_epochs": "lr",
                "learning_rate": {"lr": "lr", "secureboost": "boost"}, "n_trees": "boost", "max_depth": "boost"}


class TemplateError(ValueError):
    pass


PREDICTORS = {"hetero_lr": "hetero_lr_predict", "hetero_secureboost": "hetero_secureboost_predict"}


def _published_model(project, model_pk: str, job_pk: str):
    from .models import Model

    if model_pk:
        model = Model.objects.filter(pk=model_pk, project=project).first() if _is_uuid(model_pk) else None
    elif job_pk and _is_uuid(job_pk):
        model = Model.objects.filter(job_id=job_pk, project=project).order_by("created_at").first()
    else:
        raise TemplateError(gettext("choose the model to score with"))
    if model is None:
        raise TemplateError(gettext("no such model in this project"))
    if model.job_id is None:
        raise TemplateError(gettext("an imported model scores online only: batch scoring needs the job that trained it"))
    if not model.is_published:
        raise TemplateError(gettext("%(model)s is not published: both sites publish a model before it scores")
                            % {"model": model.label})
    return model


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(str(text))
    except ValueError:
        return False
    return True


def _scoring_nodes(project, model, cols: dict) -> list[dict]:
    """Score the aligned rows with a published model, prepared the way its own job scored;
    scorecard points when that job made a scorecard; an evaluation when the new rows have labels."""
    job = model.job
    nodes = {n["id"]: n for n in job.spec.get("nodes", [])}
    trainer = nodes[model.node]
    ids = {role: {"id_column": cols[role]["id_column"]} for role in ("guest", "host")}
    inputs = {"model": {"job": str(job.pk), "node": trainer["id"], "output": "model"}, "data": {"node": "psi", "output": "data"}}
    scoring = next((n for n in nodes.values() if n["component"] == PREDICTORS[trainer["component"]]
                    and (n.get("inputs") or {}).get("model", {}).get("node") == trainer["id"]), None)
    transform = (scoring or {}).get("inputs", {}).get("transform")
    if transform and "node" in transform:
        inputs["transform"] = {"job": str(job.pk), "node": transform["node"], "output": transform["output"]}
    label = cols["guest"].get("label_column")
    labelled = bool(cols["guest"].get("has_label"))
    guest = {**ids["guest"]}
    if trainer["component"] == "hetero_secureboost":
        guest["label_column"] = label
    elif labelled and label != (model.params or {}).get("label_column", label):
        labelled = False  # hetero_lr_predict reports the label only under the name the model was trained with
    out = [{"id": "score", "component": PREDICTORS[trainer["component"]], "inputs": inputs,
            "params": {"common": {}, "guest": guest, "host": {**ids["host"]}}}]
    if model.scorecard:
        card = {k: v for k, v in model.scorecard.items() if k != "id_column"}
        out.append({"id": "scorecard", "component": "scorecard", "inputs": {"data": {"node": "score", "output": "predictions"}},
                    "params": {"common": card, "guest": {**ids["guest"]}}})
    if labelled:
        out.append({"id": "evaluation", "component": "evaluation", "inputs": {"data": {"node": "score", "output": "predictions"}},
                    "params": {"common": {}, "guest": {"label_column": label}}})
    return out


def _columns(project, tables: dict[str, str]) -> dict[str, dict]:
    """Per role: the table's id and label column names, from our dataset or the partner's announcement."""
    from datasets.models import Dataset
    from projects.models import RemoteTable

    mine = our_role(project)
    out = {}
    for role, table_id in tables.items():
        if role == mine:
            dataset = Dataset.objects.filter(pk=table_id).first()
            if dataset is None:
                raise TemplateError(f"no dataset {table_id} here")
            out[role] = {"id_column": dataset.id_column or "id", "label_column": dataset.label_column or "y",
                         "has_label": bool(dataset.label_column)}
        else:
            remote = RemoteTable.objects.filter(project=project, table_id=table_id).first()
            if remote is None:
                raise TemplateError(f"the partner has not authorised table {table_id} in this project")
            by_role = {c.get("role"): c.get("name") for c in remote.columns}
            out[role] = {"id_column": by_role.get("id") or "id", "label_column": by_role.get("label") or "y",
                         "has_label": bool(by_role.get("label"))}
    return out


def build(name: str, project, *, our_table: str, partner_table: str, options: dict | None = None) -> dict:
    """The spec of template ``name`` for ``project`` with these tables."""
    template = TEMPLATES.get(name)
    if template is None:
        raise TemplateError(f"unknown template {name!r} (templates: {', '.join(TEMPLATES)})")
    options = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = set(options) - set(template.options)
    if unknown:
        raise TemplateError(f"unknown option {sorted(unknown)[0]!r} for template {name!r}")
    opt = {k: options.get(k, default) for k, (default, _desc) in template.options.items()}
    if not isinstance(opt.get("pause_after_psi", False), bool):
        raise TemplateError(gettext("pause_after_psi is true or false"))
    if name == "score":
        mine = our_role(project)
        theirs = "host" if mine == "guest" else "guest"
        tables = {mine: str(our_table), theirs: str(partner_table)}
        model = _published_model(project, str(opt["model"] or ""), str(opt["model_job"] or ""))
        cols = _columns(project, tables)
        ids = {role: {"id_column": cols[role]["id_column"]} for role in ("guest", "host")}
        psi = {"id": "psi", "component": "psi", "inputs": {"data": {"table": tables}},
               "params": {"common": {"reveal": opt["reveal"], "protocol": opt["protocol"]}, **ids}}
        return {"format": FORMAT, "nodes": [psi, *_scoring_nodes(project, model, cols)]}
    # The other templates are the browser's pipelines with their default steps: one builder for both.
    from .pipelines import build as build_pipeline

    values: dict[str, dict] = {}
    for option, value in opt.items():
        if option != "pause_after_psi":
            step = OPTION_STEPS[option]
            values.setdefault(step[name] if isinstance(step, dict) else step, {})[option] = value
    return build_pipeline(name, project, our_table=our_table, partner_table=partner_table, values=values,
                          pause_after_psi=opt.get("pause_after_psi", False))
