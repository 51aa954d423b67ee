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

TEMPLATES = {
    "psi": Template("psi", _("Find the overlap (PSI only)"),
                    _("Private set intersection of the two tables; who learns the overlap follows the tables' policies."),
                    {"reveal": ("both", "both, guest (the label holder only) or cardinality (the count only)")}),
    "lr": Template("lr", _("Logistic regression model"),
                   _("Overlap → train/validation split → standard scaling → binning (WOE/IV) → feature selection → "
                     "hetero logistic regression → scoring of the validation rows → evaluation (AUC, KS, ROC)."),
                   {"learning_rate": (0.15, "step size"), "max_epochs": (10, "passes over the data"),
                    "iv_threshold": (0.02, "minimum IV to keep a feature"), "validation_fraction": (0.2, "share held out"),
                    "pause_after_psi": PAUSE_AFTER_PSI}),
    "secureboost": Template("secureboost", _("Gradient-boosted trees (SecureBoost)"),
                            _("Overlap → split → SecureBoost trees → scoring of the validation rows → evaluation."),
                            {"n_trees": (10, "number of trees"), "max_depth": (3, "depth of each tree"),
                             "learning_rate": (0.3, "shrinkage"), "validation_fraction": (0.2, "share held out"),
                             "pause_after_psi": PAUSE_AFTER_PSI}),
    "score": Template("score", _("Score a table with a model"),
                      _("Align a new table with the partner's and score it with a model an earlier job trained "
                        "(with the same preparation)."),
                      {"model_job": ("", "the job that trained the model"),
                       "reveal": ("both", "who learns the overlap of the new tables")}),
}


class TemplateError(ValueError):
    pass


PREDICTORS = {"hetero_lr": "hetero_lr_predict", "hetero_secureboost": "hetero_secureboost_predict"}


def _scoring_node(project, job_id: str, ids: dict) -> dict:
    """Score the aligned rows with the model of an earlier job, prepared the way it was scored there."""
    from .models import Job

    job = Job.objects.filter(pk=job_id, project=project).first() if job_id else None
    if job is None:
        raise TemplateError("choose the job that trained the model")
    nodes = {n["id"]: n for n in job.spec.get("nodes", [])}
    trainer = next((n for n in nodes.values() if n["component"] in PREDICTORS), None)
    if trainer is None:
        raise TemplateError("that job trained no model")
    inputs = {"model": {"job": str(job.pk), "node": trainer["id"], "output": "model"}, "data": {"node": "psi", "output": "data"}}
    # The preparation its own scoring applied (the LR template's scaling), taken from the same job.
    scoring = next((n for n in nodes.values() if n["component"] == PREDICTORS[trainer["component"]]), None)
    transform = (scoring or {}).get("inputs", {}).get("transform")
    if transform and "node" in transform:
        inputs["transform"] = {"job": str(job.pk), "node": transform["node"], "output": transform["output"]}
    guest = {**ids["guest"]}
    return {"id": "score", "component": PREDICTORS[trainer["component"]], "inputs": inputs,
            "params": {"common": {}, "guest": guest, "host": {**ids["host"]}}}


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
            out[role] = {"id_column": dataset.id_column or "id", "label_column": dataset.label_column or "y"}
        else:
            remote = RemoteTable.objects.filter(project=project, table_id=table_id).first()
            if remote is None:
                raise TemplateError(f"the partner has not authorised table {table_id} in this project")
            by_role = {c.get("role"): c.get("name") for c in remote.columns}
            out[role] = {"id_column": by_role.get("id") or "id", "label_column": by_role.get("label") or "y"}
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
    mine = our_role(project)
    theirs = "host" if mine == "guest" else "guest"
    tables = {mine: str(our_table), theirs: str(partner_table)}
    cols = _columns(project, tables)
    ids = {role: {"id_column": cols[role]["id_column"]} for role in ("guest", "host")}
    label = {"label_column": cols["guest"]["label_column"]}

    def node(node_id, component, inputs, common=None, guest=None, host=None):
        params = {"common": common or {}, "guest": {**ids["guest"], **(guest or {})}, "host": {**ids["host"], **(host or {})}}
        return {"id": node_id, "component": component, "params": params, "inputs": inputs}

    def out(node_id, port):
        return {"node": node_id, "output": port}

    psi = node("psi", "psi", {"data": {"table": tables}}, common={"reveal": opt.get("reveal", "both")})
    if name == "psi":
        return {"format": FORMAT, "nodes": [psi]}
    if name == "score":
        return {"format": FORMAT, "nodes": [psi, _scoring_node(project, opt["model_job"], ids)]}
    split = node("split", "split", {"data": out("psi", "data")},
                 common={"validation_fraction": opt["validation_fraction"]}, guest=label)
    nodes = [psi, split]
    if name == "lr":
        # Standardised features train well; the same scaling is applied to the rows scored later.
        nodes += [
            node("scale", "preprocess", {"data": out("split", "train")}, common={"scaling": "standard"}, guest=label),
            node("binning", "hetero_binning", {"data": out("scale", "data")}, guest=label),
            node("selection", "feature_selection", {"data": out("scale", "data"), "binning": out("binning", "model")},
                 common={"iv_threshold": opt["iv_threshold"]}, guest=label),
            node("lr", "hetero_lr", {"data": out("selection", "data")},
                 common={"learning_rate": opt["learning_rate"], "max_epochs": opt["max_epochs"], "seed": 42}, guest=label),
            node("predict", "hetero_lr_predict",
                 {"model": out("lr", "model"), "data": out("split", "validate"), "transform": out("scale", "model")}),
        ]
    else:
        nodes += [
            node("boost", "hetero_secureboost", {"data": out("split", "train")},
                 common={"n_trees": opt["n_trees"], "max_depth": opt["max_depth"], "learning_rate": opt["learning_rate"]},
                 guest=label),
            node("predict", "hetero_secureboost_predict", {"model": out("boost", "model"), "data": out("split", "validate")},
                 guest=label),
        ]
    nodes.append({"id": "evaluation", "component": "evaluation", "params": {"guest": label},
                  "inputs": {"data": {"node": "predict", "output": "predictions"}}})
    spec = {"format": FORMAT, "nodes": nodes}
    if opt["pause_after_psi"]:
        spec["pause_after"] = ["psi"]
    return spec
