"""The pipelines an analyst builds in the browser: steps, their settings, and the spec they make.

A template (``jobs.templates``) names a pipeline; here each pipeline is a list of **steps**.
A step is one node of the job: a component, where its inputs come from (which depends on
which optional steps are switched on: skip the scaling and the binning reads the split's
rows), the settings the pipeline fixes (the LR pipeline always scales with "standard") and
the settings the analyst sees. Settings come from the component's own JSON Schema, so the
form, the spec's validation and the engine agree on names, bounds and defaults; a pipeline
only changes a default where the template has a better one for its purpose.

``build(...)`` turns the analyst's choices into a ``fedweb-job/1`` spec; ``read(spec)`` reads
a spec back into choices (to retune a job with the form it was made with). Neither knows
about HTML: ``jobs/forms.py`` makes the form from ``fields(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from django.utils.translation import gettext_lazy as _

from engine.registry import get_component

from .spec import FORMAT, our_role

# Never shown: the pipeline fills them from the tables (ids, labels, columns), the operator sets
# them (checkpoints), or they exist for tests only.
HIDDEN = {
    "id_column", "label_column", "score_column", "probability_column", "output_column", "columns",
    "exclude_columns", "categorical_columns", "numeric_columns", "passthrough_columns", "feature_columns",
    "checkpoint_dir", "insecure_allow_small_keys", "quantiles", "arithmetic", "sample_rows", "consistency_rows",
    "check_consistency", "evaluate", "max_curve_points", "task",
}

# Choices whose consequences for privacy or results deserve words rather than their code names.
CHOICE_LABELS = {
    "validation_reveal": {
        "scores": _("Show per-epoch validation AUC and KS — the partner's partial scores on the validation rows reach us"),
        "loss_only": _("Loss only — the validation loss is computed under encryption; nothing else reaches us"),
    },
    "reveal": {
        "both": _("Both sites get the overlapping rows"),
        "guest": _("Only the label holder gets the overlapping rows; the partner learns only how many"),
        "cardinality": _("Nobody gets rows; both sites learn only how many ids are shared"),
    },
    "host_learns": {
        "nothing": _("The partner learns nothing about its features' strength"),
        "iv": _("The partner learns the IV of each of its features"),
        "woe": _("The partner learns IV and WOE per bin (from which it can work out each bin's event count)"),
    },
    "early_stopping": {
        "none": _("Never: run every epoch"),
        "train_loss": _("When the training loss stops improving"),
        "validation_loss": _("When the validation loss stops improving"),
        "validation_auc": _("When the validation AUC stops improving"),
        "validation_ks": _("When the validation KS stops improving"),
    },
    "protocol": {
        "ecdh": _("ECDH — every privacy option on both sites; about three minutes per million ids"),
        "rr22": _("RR22 (oblivious transfer) — many times faster on large tables; the label holder sees the overlap "
                  "at once, so it cannot be used where the partner's table asks for a smallest overlap"),
    },
    "he_scheme": {
        "paillier": _("Paillier — the longer-established scheme"),
        "ou": _("Okamoto–Uchiyama — the same security, 1.6 to 1.9 times as fast in the benchmarks, half the bytes on the wire"),
    },
    "scaling": {"none": _("No scaling"), "standard": _("Standard: (x − mean) / std"),
                "minmax": _("Min–max: (x − min) / (max − min)")},
    "method": {"quantile": _("Equal-frequency bins"), "equal_width": _("Equal-width bins"),
               "stratified": _("Stratified: keep each class's share in both sets"), "random": _("Random rows")},
}

# Where a choice decides what the partner or this site learns, the form says so beside it.
PRIVACY_NOTES = {
    "validation_reveal": _("Privacy: with per-epoch AUC the partner's partial scores on the validation rows are "
                           "sent to this site. Choose “loss only” if your agreement does not allow that."),
    "reveal": _("Privacy: each table's policy can forbid sending the overlap to the partner; the job is then "
                "refused before anything runs."),
    "host_learns": _("Privacy: with WOE per bin the partner can work out how many events fall in each of its bins."),
    "subsample": _("Privacy: with subsampling the partner learns which rows each tree was grown on."),
    "protocol": _("Privacy: with RR22 the label holder learns the overlap before it is counted, so a table whose "
                  "rules ask for a smallest overlap refuses it (its owner can set that to 0), and “Nobody gets rows” "
                  "is not offered."),
}


@dataclass(frozen=True)
class Step:
    """One node of a pipeline."""

    id: str
    component: str
    title: Any
    explain: Any
    inputs: Callable[[set[str]], dict]  # included step ids -> the node's inputs
    optional: bool = False
    default_on: bool = True
    needs: tuple[str, ...] = ()  # optional steps this one cannot run without
    main: tuple[str, ...] = ()  # settings shown up front; the others are under "More settings"
    fixed: dict = field(default_factory=dict)  # settings the pipeline decides, not shown
    defaults: dict = field(default_factory=dict)  # the pipeline's defaults where they differ from the component's
    auxiliary: bool = False  # present when its source step is, never configured by hand
    present: Callable[[set[str]], bool] | None = None


def _out(node: str, port: str) -> dict:
    return {"node": node, "output": port}


def _train_rows(on: set[str]) -> dict:
    return _out("scale", "data") if "scale" in on else _out("split", "train")


def _validation_rows(on: set[str]) -> dict:
    return _out("scale_validate", "data") if "scale" in on else _out("split", "validate")


def _lr_rows(on: set[str]) -> dict:
    return _out("selection", "data") if "selection" in on else _train_rows(on)


PSI = Step("psi", "psi", _("Find the overlap"),
           _("Private set intersection: only the ids both tables hold are kept, and neither site sees the other's "
             "other ids."), lambda on: {}, main=("reveal", "min_overlap", "protocol"))
STATISTICS = Step("statistics", "statistics", _("Describe the data"),
                  _("Counts, missing values, means and spread of each site's own columns, each site for itself."),
                  lambda on: {"data": _out("split", "train")}, optional=True, default_on=False, main=())
SPLIT = Step("split", "split", _("Split into training and validation rows"),
             _("Keeps a share of the rows aside to measure the model on rows it did not learn from."),
             lambda on: {"data": _out("psi", "data")}, main=("validation_fraction", "method", "seed"))

LR_STEPS = [
    PSI, STATISTICS, SPLIT,
    Step("scale", "preprocess", _("Fill gaps and scale the features"),
         _("Missing numbers are filled and every feature is standardised, from the training rows only; the same "
           "preparation is applied to the rows scored later."),
         lambda on: {"data": _out("split", "train")}, optional=True, fixed={"scaling": "standard"},
         main=("numeric_fill", "degenerate_columns")),
    Step("scale_validate", "preprocess", _("Prepare the validation rows the same way"), "",
         lambda on: {"data": _out("split", "validate"), "model": _out("scale", "model")}, auxiliary=True,
         present=lambda on: "scale" in on),
    Step("binning", "hetero_binning", _("Bin the features and measure their strength (WOE, IV)"),
         _("Each feature is cut into bins; the label holder's encrypted labels give each bin's weight of evidence "
           "and each feature's information value (IV) without revealing the labels."),
         lambda on: {"data": _train_rows(on)}, optional=True, main=("n_bins", "method", "host_learns", "key_bits")),
    Step("selection", "feature_selection", _("Keep the strong features"),
         _("Drops features whose IV is below a floor (and, if you set them, those with many gaps, no variance or "
           "strong correlation)."),
         lambda on: {"data": _train_rows(on), "binning": _out("binning", "model")}, optional=True, needs=("binning",),
         main=("iv_threshold", "iv_top_k", "max_missing_rate"), defaults={"iv_threshold": 0.02}),
    Step("lr", "hetero_lr", _("Train the logistic regression"),
         _("Both sites train one model on their own columns; gradients travel encrypted (Paillier), so neither "
           "site sees the other's features or the labels."),
         lambda on: {"data": _lr_rows(on), "validate": _validation_rows(on)},
         main=("learning_rate", "max_epochs", "validation_reveal", "early_stopping", "l2", "batch_size", "key_bits"),
         fixed={}, defaults={"max_epochs": 10, "seed": 42}),
    Step("predict", "hetero_lr_predict", _("Score the validation rows"),
         _("The trained model scores the rows kept aside, each site adding its own part of each score."),
         lambda on: {"model": _out("lr", "model"), "data": _out("split", "validate"),
                     **({"transform": _out("scale", "model")} if "scale" in on else {})}, main=("threshold",)),
    Step("scorecard", "scorecard", _("Turn scores into scorecard points"),
         _("Converts each probability into points (more points, better odds), as credit scorecards do."),
         lambda on: {"data": _out("predict", "predictions")}, optional=True, default_on=False,
         main=("base_score", "base_odds", "pdo", "positive")),
    Step("evaluation", "evaluation", _("Measure the model"),
         _("AUC, KS, ROC, lift and gain, precision and recall, the confusion matrix, on the validation rows."),
         lambda on: {"data": _out("predict", "predictions")}, main=("threshold", "n_bins")),
]

SECUREBOOST_STEPS = [
    PSI, STATISTICS, SPLIT,
    Step("boost", "hetero_secureboost", _("Grow the boosted trees (SecureBoost)"),
         _("Trees are grown on both sites' features; the label holder's gradients travel encrypted, and the "
           "partner's split points stay with the partner."),
         lambda on: {"data": _out("split", "train"), "validate": _out("split", "validate")},
         main=("n_trees", "max_depth", "learning_rate", "early_stopping_rounds", "subsample", "key_bits")),
    Step("predict", "hetero_secureboost_predict", _("Score the validation rows"),
         _("The trees score the rows kept aside; each site follows its own split points."),
         lambda on: {"model": _out("boost", "model"), "data": _out("split", "validate")}, main=("threshold",)),
    Step("evaluation", "evaluation", _("Measure the model"),
         _("AUC, KS, ROC, lift and gain, precision and recall, the confusion matrix, on the validation rows."),
         lambda on: {"data": _out("predict", "predictions")}, main=("threshold", "n_bins")),
]

PIPELINES: dict[str, list[Step]] = {"psi": [PSI], "lr": LR_STEPS, "secureboost": SECUREBOOST_STEPS}


class PipelineError(ValueError):
    pass


def steps_of(template: str) -> list[Step]:
    try:
        return PIPELINES[template]
    except KeyError:
        raise PipelineError(_("This kind of job cannot be built from a form.")) from None


def properties(component: str) -> dict:
    return get_component(component).params.model_json_schema().get("properties", {})


def is_visible(name: str, schema: dict) -> bool:
    """Settings an analyst can set in a form field: not hidden, not a list of columns."""
    if name in HIDDEN:
        return False
    kinds = {schema.get("type")} | {alt.get("type") for alt in schema.get("anyOf", [])}
    return "array" not in kinds and "object" not in kinds


def fields(step: Step) -> list[tuple[str, dict, Any]]:
    """(name, JSON schema, pipeline default) of each setting of ``step`` the analyst sees, main ones first."""
    props = {name: schema for name, schema in properties(step.component).items()
             if is_visible(name, schema) and name not in step.fixed}
    ordered = [n for n in step.main if n in props] + sorted(n for n in props if n not in step.main)
    return [(name, props[name], step.defaults.get(name, props[name].get("default"))) for name in ordered]


def included(template: str, chosen: set[str] | None = None) -> set[str]:
    """The step ids that run: required steps, the chosen optional ones (default: their defaults) whose
    needs are met, and the auxiliary steps of those."""
    steps = steps_of(template)
    on = {s.id for s in steps if not s.optional and not s.auxiliary}
    wanted = {s.id for s in steps if s.optional and (s.default_on if chosen is None else s.id in chosen)}
    on |= {s.id for s in steps if s.id in wanted and all(n in wanted for n in s.needs)}
    on |= {s.id for s in steps if s.auxiliary and s.present and s.present(on)}
    return on


def _role_columns(project, our_table: str, partner_table: str) -> dict[str, dict]:
    from .templates import _columns

    mine = our_role(project)
    theirs = "host" if mine == "guest" else "guest"
    return _columns(project, {mine: str(our_table), theirs: str(partner_table)})


def build(template: str, project, *, our_table: str, partner_table: str, chosen: set[str] | None = None,
          values: dict[str, dict] | None = None, pause_after_psi: bool = False) -> dict:
    """The spec of ``template`` with these tables, optional steps and settings ({step: {setting: value}})."""
    steps = steps_of(template)
    on = included(template, chosen)
    values = values or {}
    mine = our_role(project)
    theirs = "host" if mine == "guest" else "guest"
    tables = {mine: str(our_table), theirs: str(partner_table)}
    cols = _role_columns(project, our_table, partner_table)
    nodes = []
    for step in steps:
        if step.id not in on:
            continue
        props = properties(step.component)
        common = {**{k: v for k, v in step.defaults.items() if k in props}, **step.fixed,
                  **{k: v for k, v in (values.get(step.id) or {}).items() if k in props and k not in step.fixed}}
        roles = get_component(step.component).roles
        per_role = {}
        for role in ("guest", "host"):
            own = {}
            if "id_column" in props:
                own["id_column"] = cols[role]["id_column"]
            if role == "guest" and "label_column" in props:
                own["label_column"] = cols["guest"]["label_column"]
            if role in roles:
                per_role[role] = own
        inputs = {"data": {"table": tables}} if step.id == "psi" else step.inputs(on)
        nodes.append({"id": step.id, "component": step.component,
                      "params": {"common": common, **per_role}, "inputs": inputs})
    spec = {"format": FORMAT, "nodes": nodes}
    if pause_after_psi and len(nodes) > 1:
        spec["pause_after"] = ["psi"]
    return spec


def read(spec: dict) -> tuple[set[str], dict[str, dict]]:
    """The optional steps a spec includes and each node's shared settings, to fill the form again."""
    nodes = {n.get("id"): n for n in spec.get("nodes", [])}
    values = {node_id: dict((n.get("params") or {}).get("common") or {}) for node_id, n in nodes.items()}
    return set(nodes), values


def tables_of(spec: dict, project) -> tuple[str, str]:
    """(our table, the partner's table) of the first node of a spec that reads the project's tables."""
    tables = next((ref["table"] for n in spec.get("nodes", []) for ref in (n.get("inputs") or {}).values()
                   if isinstance(ref, dict) and isinstance(ref.get("table"), dict)), {})
    mine = our_role(project)
    return tables.get(mine, ""), tables.get("host" if mine == "guest" else "guest", "")
