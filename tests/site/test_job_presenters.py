"""The results of a finished job, as the job page shows them: every number comes from a real component run.

The components run once per module, in this process (``run_local``) on the breast-cancer sample split
between a guest and a host, with small Paillier keys to be quick. Their metrics and models are stored the
way a site stores them (``jobs.tasks._plain``, the artifact store), on Task rows of a job, and the
sections ``job_results`` builds from them are checked against the runs' own figures.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from jobs import presenters
from jobs.models import Job, JobStatus, Task, TaskStatus
from tests.site.job_scene import PARTNER_TABLE, job_project

SMALL_KEYS = {"key_bits": 1024, "insecure_allow_small_keys": True}
IDS = {"guest": {"id_column": "id"}, "host": {"id_column": "id"}}
LABELLED = {"guest": {"id_column": "id", "label_column": "y"}, "host": {"id_column": "id"}}

# The job these runs make up: the LR template's chain, plus statistics, scoring of the training rows
# (so the evaluation compares training and validation rows), a scorecard and SecureBoost.
NODES = [
    ("psi", "psi", {"data": {"table": {"guest": "<our dataset>", "host": PARTNER_TABLE}}}),
    ("split", "split", {"data": {"node": "psi", "output": "data"}}),
    ("statistics", "statistics", {"data": {"node": "split", "output": "train"}}),
    ("scale", "preprocess", {"data": {"node": "split", "output": "train"}}),
    ("binning", "hetero_binning", {"data": {"node": "scale", "output": "data"}}),
    ("selection", "feature_selection", {"data": {"node": "scale", "output": "data"},
                                        "binning": {"node": "binning", "output": "model"}}),
    ("lr", "hetero_lr", {"data": {"node": "selection", "output": "data"}}),
    ("predict", "hetero_lr_predict", {"model": {"node": "lr", "output": "model"},
                                      "data": {"node": "split", "output": "validate"},
                                      "transform": {"node": "scale", "output": "model"}}),
    ("predict_train", "hetero_lr_predict", {"model": {"node": "lr", "output": "model"},
                                            "data": {"node": "split", "output": "train"},
                                            "transform": {"node": "scale", "output": "model"}}),
    ("evaluation", "evaluation", {"data": {"node": "predict", "output": "predictions"},
                                  "compare": {"node": "predict_train", "output": "predictions"}}),
    ("scorecard", "scorecard", {"data": {"node": "predict", "output": "predictions"}}),
    ("boost", "hetero_secureboost", {"data": {"node": "split", "output": "train"},
                                     "validate": {"node": "split", "output": "validate"}}),
    ("boost_predict", "hetero_secureboost_predict", {"model": {"node": "boost", "output": "model"},
                                                     "data": {"node": "split", "output": "validate"}}),
]


def _run(component, params, inputs, role_params=None):
    """{role: {"outputs", "series"}}: each role's outputs and the series its ctx.report calls made (as a site
    records them: one list per figure)."""
    from engine.federation.local import run_local

    series: dict[str, dict[str, list]] = {}

    def reporter(role):
        def report(*, fraction=None, stage=None, metrics=None):
            for name, value in (metrics or {}).items():
                series.setdefault(role, {}).setdefault(name, []).append(value)
        return report

    outputs = run_local(component, params, inputs, role_params=role_params,
                        reporters={"guest": reporter("guest"), "host": reporter("host")})
    return {role: {"outputs": out, "series": series.get(role, {})} for role, out in outputs.items()}


def run_sample_job() -> dict[str, dict]:
    """Every node of NODES run on the sample: {node: {role: {"outputs", "series"}}}."""
    import engine.components  # noqa: F401 - registers the components
    from engine.samples import breast_cancer_split

    guest, host = breast_cancer_split()

    def out(node, port):
        return {role: runs[node][role]["outputs"][port] for role in runs[node]}

    def both(**ports):
        return {role: {name: value[role] for name, value in ports.items()} for role in ("guest", "host")}

    runs: dict[str, dict] = {}
    runs["psi"] = _run("psi", {"reveal": "both"}, {"guest": {"data": guest}, "host": {"data": host}}, IDS)
    runs["split"] = _run("split", {"validation_fraction": 0.2}, both(data=out("psi", "data")), LABELLED)
    train, validate = out("split", "train"), out("split", "validate")
    runs["statistics"] = _run("statistics", {}, both(data=train), LABELLED)
    runs["scale"] = _run("preprocess", {"scaling": "standard"}, both(data=train), LABELLED)
    scaled_validate = _run("preprocess", {}, both(data=validate, model=out("scale", "model")), LABELLED)
    runs["binning"] = _run("hetero_binning", SMALL_KEYS, both(data=out("scale", "data")), LABELLED)
    # A high IV threshold so that some features of each side are dropped.
    runs["selection"] = _run("feature_selection", {"iv_threshold": 1.0},
                             both(data=out("scale", "data"), binning=out("binning", "model")), LABELLED)
    scaled_validate = {role: scaled_validate[role]["outputs"]["data"] for role in scaled_validate}
    runs["lr"] = _run("hetero_lr", {"max_epochs": 4, "seed": 7, **SMALL_KEYS},
                      both(data=out("scale", "data"), validate=scaled_validate), LABELLED)
    runs["predict"] = _run("hetero_lr_predict", {}, both(data=validate, model=out("lr", "model"),
                                                         transform=out("scale", "model")), IDS)
    runs["predict_train"] = _run("hetero_lr_predict", {}, both(data=train, model=out("lr", "model"),
                                                               transform=out("scale", "model")), IDS)
    runs["evaluation"] = _run("evaluation", {"label_column": "y"},
                              {"guest": {"data": runs["predict"]["guest"]["outputs"]["predictions"],
                                         "compare": runs["predict_train"]["guest"]["outputs"]["predictions"]}})
    runs["scorecard"] = _run("scorecard", {}, {"guest": {"data": runs["predict"]["guest"]["outputs"]["predictions"]}})
    runs["boost"] = _run("hetero_secureboost", {"n_trees": 3, "max_depth": 2, **SMALL_KEYS},
                         both(data=train, validate=validate), LABELLED)
    runs["boost_predict"] = _run("hetero_secureboost_predict", {}, both(data=validate, model=out("boost", "model")),
                                 LABELLED)
    return runs


def make_finished_job(project, user, runs, *, role="guest", name="Credit model", status=TaskStatus.SUCCEEDED,
                      partner_mirrors=True) -> Job:
    """A succeeded job whose tasks of ``role`` hold the runs' metrics and outputs as a site stores them."""
    from jobs import artifacts
    from jobs.tasks import _plain

    spec = {"format": "fedweb-job/1", "nodes": [
        {"id": node, "component": component, "params": {"common": {}, **{r: dict(p) for r, p in LABELLED.items()}},
         "inputs": inputs} for node, component, inputs in NODES]}
    spec["nodes"][0]["inputs"]["data"]["table"] = {"guest": project.ours, "host": PARTNER_TABLE}
    job = Job.objects.create(project=project, name=name, spec=spec, initiator="site-1", created_by=user,
                             status=JobStatus.SUCCEEDED)
    other = "host" if role == "guest" else "guest"
    for node, component, _inputs in NODES:
        run = runs[node].get(role)
        if run is not None:
            stored = {}
            for port, value in run["outputs"].items():
                if port == "metrics" or value is None:
                    continue
                kind = "table" if hasattr(value, "columns") else "model"
                stored[port] = artifacts.store(kind, value).id
            Task.objects.create(job=job, node=node, site=Task.OURS, party="site-1", role=role, component=component,
                                version="1.0.0", status=status, progress=1.0, outputs=stored,
                                metrics={"series": _plain(run["series"]), "final": _plain(run["outputs"]["metrics"])})
        if partner_mirrors and other in runs[node]:
            # The partner's mirror: status only, no figures ever cross.
            Task.objects.create(job=job, node=node, site=Task.PARTNER, party="telco", role=other,
                                component=component, version="1.0.0", status=TaskStatus.SUCCEEDED, progress=1.0)
    return job


@pytest.fixture(scope="module")
def runs():
    return run_sample_job()


@pytest.fixture
def project(admin, alice, make_dataset, settings):
    project, dataset = job_project(admin=admin, members=[alice], make_dataset=make_dataset, settings=settings)
    project.ours = str(dataset.pk)
    return project


@pytest.fixture
def guest_sections(project, alice, runs):
    job = make_finished_job(project, alice, runs)
    return {s["node"]: s for s in presenters.job_results(job, alice)}


def _chart(section, name):
    return next(c for c in section["charts"] if c["id"] == f"{section['node']}-{name}")


def _facts(section):
    return {item["label"]: item["value"] for item in section["summary"]}


def _final(runs, node, role="guest"):
    return runs[node][role]["outputs"]["metrics"]


pytestmark = pytest.mark.django_db


def test_every_finished_node_has_a_section_in_the_spec_order_and_all_of_it_is_json(project, alice, runs):
    job = make_finished_job(project, alice, runs)
    sections = presenters.job_results(job, alice)
    assert [s["node"] for s in sections] == [node for node, _c, _i in NODES]
    text = json.dumps(sections)  # plain data only: the template embeds it with json_script
    assert "NaN" not in text and "Infinity" not in text
    for section in sections:
        assert section["title"] and isinstance(section["summary"], list)
        for chart in section["charts"]:
            assert chart["id"].startswith(section["node"] + "-")
            assert chart["kind"] in {"bar", "line", "xy", "confusion", "table"}
            assert chart["filename"].endswith(".csv")
            width = len(chart["table"]["columns"])
            assert all(len(row) == width for row in chart["table"]["rows"]), chart["id"]
    ids = [c["id"] for s in sections for c in s["charts"]]
    assert len(ids) == len(set(ids))  # the page's test ids are unique


def test_unfinished_nodes_and_the_partners_mirrors_show_nothing(project, alice, runs):
    job = make_finished_job(project, alice, runs)
    Task.objects.filter(job=job, site=Task.OURS, node="boost").update(status=TaskStatus.RUNNING)
    Task.objects.filter(job=job, site=Task.OURS, node="scorecard").update(status=TaskStatus.FAILED)
    Task.objects.filter(job=job, site=Task.OURS, node="lr").update(status=TaskStatus.REUSED)
    sections = {s["node"]: s for s in presenters.job_results(job, alice)}
    assert "boost" not in sections and "scorecard" not in sections
    assert any("Reused" in note for note in sections["lr"]["notes"])
    # Only our tasks count: with ours gone, the partner's finished mirror gives no section.
    Task.objects.filter(job=job, site=Task.OURS, node="psi").delete()
    assert "psi" not in {s["node"] for s in presenters.job_results(job, alice)}


def test_psi_shows_the_overlap_and_both_set_sizes_and_offers_the_overlap_table(guest_sections, runs):
    psi = guest_sections["psi"]
    final = _final(runs, "psi")
    facts = _facts(psi)
    assert facts["Shared ids (the overlap)"] == final["intersection_size"] == 569
    assert facts["Distinct ids in our table"] == final["unique_ids"]
    assert facts["Distinct ids in the partner's table"] == final["peer_unique_ids"]
    assert psi["downloads"] == [{"port": "data", "label": "Download the overlap table (CSV)"}]
    assert _chart(psi, "overlap")["series"][0]["data"] == [569, 569, 569]


def test_psi_that_revealed_only_the_count_says_so_and_offers_no_download(project, alice, vera, runs):
    from engine.samples import breast_cancer_split

    guest, host = breast_cancer_split()
    counted = _run("psi", {"reveal": "cardinality"}, {"guest": {"data": guest.head(300)}, "host": {"data": host}}, IDS)
    job = make_finished_job(project, alice, {**runs, "psi": counted})
    psi = presenters.job_results(job, alice)[0]
    assert psi["node"] == "psi" and psi["downloads"] == []
    assert _facts(psi)["Shared ids (the overlap)"] == 300
    assert _facts(psi)["Distinct ids in the partner's table"] == 569
    assert any("Only the number of shared ids was revealed" in note for note in psi["notes"])
    # A viewer may read the results but not download the rows.
    job = make_finished_job(project, alice, runs, name="again")
    from projects.models import ProjectMember

    ProjectMember.objects.create(project=project, user=vera)
    assert presenters.job_results(job, vera)[0]["downloads"] == []


def test_statistics_give_one_row_per_feature_with_the_components_numbers(guest_sections, runs):
    final = _final(runs, "statistics")
    table = _chart(guest_sections["statistics"], "features")["table"]
    keys = [c["key"] for c in table["columns"]]
    rows = {row[0]: dict(zip(keys, row)) for row in table["rows"]}
    assert set(rows) == set(final["columns"])
    radius = final["columns"]["mean_radius"]
    assert rows["mean_radius"]["mean"] == pytest.approx(radius["mean"])
    assert rows["mean_radius"]["std"] == pytest.approx(radius["std"])
    assert rows["mean_radius"]["max"] == pytest.approx(radius["max"])
    assert rows["mean_radius"]["median"] == pytest.approx(radius["quantiles"]["0.5"])
    assert rows["mean_radius"]["missing"] == 0
    assert _facts(guest_sections["statistics"])["Event rate (label 1)"] == pytest.approx(final["label"]["event_rate"])


def test_binning_iv_bars_equal_the_binning_metrics_sorted_and_split_by_party(guest_sections, runs):
    final = _final(runs, "binning")
    iv = _chart(guest_sections["binning"], "iv")
    ours, theirs = iv["series"]
    assert iv["options"]["horizontal"] is True
    values = [a if a is not None else b for a, b in zip(ours["data"], theirs["data"])]
    assert values == sorted(values, reverse=True)
    shown = dict(zip(iv["labels"], values))
    expected = {**final["iv"], **final["host_iv"]}
    assert shown == pytest.approx(expected)
    assert all(ours["data"][i] is None for i, name in enumerate(iv["labels"]) if name in final["host_iv"])
    # The partner keeps its names: the guest sees h0, h1, ... and is told why.
    assert any("opaque names" in note for note in guest_sections["binning"]["notes"])


def test_binning_woe_table_per_feature_comes_from_our_half_of_the_model(guest_sections, runs):
    woe = _chart(guest_sections["binning"], "woe")
    body = runs["binning"]["guest"]["outputs"]["model"]["body"]
    items = {item["key"]: item for item in woe["variants"]["items"]}
    assert set(items) == {f["name"] for f in body["features"]}
    feature = next(f for f in body["features"] if f["name"] == "mean_radius")
    table = items["mean_radius"]["table"]
    keys = [c["key"] for c in table["columns"]]
    assert keys == ["bin", "count", "events", "non_events", "event_rate", "woe", "iv"]
    assert [row[keys.index("woe")] for row in table["rows"]] == pytest.approx([b["woe"] for b in feature["bins"]])
    assert [row[keys.index("count")] for row in table["rows"]] == [b["count"] for b in feature["bins"]]
    assert "000000" not in " ".join(row[0] for row in table["rows"])  # bin labels without float artefacts
    assert table["rows"][-1][0] == "Missing"  # the engine's own names of bins are put in the page's words
    assert items["mean_radius"]["label"] == "mean_radius (ours)"
    assert items["h0"]["label"] == "h0 (partner's)"
    assert [row[0] for row in items["h0"]["table"]["rows"]][:2] == ["Bin 0", "Bin 1"]
    # The chart opens on the strongest feature.
    assert woe["labels"] == woe["variants"]["items"][0]["labels"]
    assert woe["variants"]["items"][0]["iv"] == max(i["iv"] for i in woe["variants"]["items"])


def test_feature_selection_says_what_was_kept_and_why_the_rest_was_dropped(guest_sections, runs):
    final = _final(runs, "selection")
    table = _chart(guest_sections["selection"], "features")["table"]
    decision = {row[0]: (row[2], row[3]) for row in table["rows"]}
    dropped = {d["name"] for d in final["dropped"]}
    assert dropped, "the IV threshold of the fixture drops something"
    for name in final["columns"]:
        assert decision[name][0] == ("Dropped" if name in dropped else "Kept")
    assert all(decision[name][1] == "Predictive power (IV) too low" for name in dropped)
    host_iv = _final(runs, "binning")["host_iv"]
    for name in final["host_iv_dropped"]:
        assert decision[name][0] == "Dropped"
    iv_of = {row[0]: row[4] for row in table["rows"]}
    kept = final["host_keep"]
    assert {name: iv_of[name] for name in kept} == pytest.approx({name: host_iv[name] for name in kept})
    facts = _facts(guest_sections["selection"])
    assert facts["Our features kept"] == final["kept"]
    assert facts["Partner's features dropped"] == len(final["host_iv_dropped"])


def test_lr_loss_and_validation_curves_per_epoch_and_our_weights(guest_sections, runs):
    lr = guest_sections["lr"]
    series = runs["lr"]["guest"]["series"]
    loss = _chart(lr, "loss")
    assert loss["kind"] == "line" and loss["labels"] == [1, 2, 3, 4]
    by_label = {s["label"]: s["data"] for s in loss["series"]}
    assert by_label["Training loss"] == pytest.approx(series["train_loss"])
    assert by_label["Validation loss"] == pytest.approx(series["validation_loss"])
    validation = {s["label"]: s["data"] for s in _chart(lr, "validation")["series"]}
    assert validation["AUC"] == pytest.approx(series["validation_auc"])
    assert validation["KS"] == pytest.approx(series["validation_ks"])
    body = runs["lr"]["guest"]["outputs"]["model"]["body"]
    weights = _chart(lr, "weights")
    shown = dict(zip(weights["labels"], weights["series"][0]["data"]))
    assert shown == pytest.approx(dict(zip(body["features"], body["weights"])))
    magnitudes = [abs(w) for w in weights["series"][0]["data"]]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert _facts(lr)["Intercept"] == pytest.approx(body["intercept"])


def test_evaluation_roc_ends_at_one_one_and_its_auc_matches(guest_sections, runs):
    final = _final(runs, "evaluation")
    section = guest_sections["evaluation"]
    assert _facts(section)["AUC"] == pytest.approx(final["data"]["auc"])
    roc = _chart(section, "roc")
    validation, training, guess = roc["series"]
    assert validation["label"] == "Validation rows" and training["label"] == "Training rows"
    assert guess["style"] == "reference"
    assert validation["data"][0] == [0.0, 0.0] and validation["data"][-1] == [1.0, 1.0]
    xs, ys = zip(*validation["data"])
    assert float(np.trapezoid(ys, xs)) == pytest.approx(final["data"]["auc"], abs=1e-9)
    assert [h["value"] for h in roc["highlights"]] == pytest.approx([final["data"]["auc"], final["compare"]["auc"]])
    # Training and validation side by side.
    assert {c["id"] for c in section["charts"]} >= {"evaluation-figures", "evaluation-ks", "evaluation-ks-compare",
                                                    "evaluation-confusion", "evaluation-confusion-compare",
                                                    "evaluation-pr", "evaluation-gain", "evaluation-lift"}
    figures = _chart(section, "figures")["table"]
    auc_row = next(row for row in figures["rows"] if row[0] == "AUC")
    assert auc_row[1:] == pytest.approx([final["data"]["auc"], final["compare"]["auc"]])


def test_the_ks_curve_peaks_at_the_reported_ks(guest_sections, runs):
    report = _final(runs, "evaluation")["data"]
    ks = _chart(guest_sections["evaluation"], "ks")
    caught, flagged, marker = ks["series"]
    gaps = [c[1] - f[1] for c, f in zip(caught["data"], flagged["data"])]
    assert max(gaps) == pytest.approx(report["ks"])
    assert marker["data"][1][1] - marker["data"][0][1] == pytest.approx(report["ks"])
    assert caught["data"][-1] == [1.0, 1.0]  # flag every row and every event is caught


def test_gain_and_lift_come_from_the_lift_table(guest_sections, runs):
    report = _final(runs, "evaluation")["data"]
    section = guest_sections["evaluation"]
    gain = _chart(section, "gain")["series"][0]["data"]
    assert gain[-1] == pytest.approx([1.0, 1.0])
    assert [y for _x, y in gain[1:]] == pytest.approx([row["gain"] for row in report["lift"]])
    lift = _chart(section, "lift")
    assert lift["series"][0]["data"] == pytest.approx([row["lift"] for row in report["lift"]])
    assert lift["labels"] == [f"Top {10 * k}%" for k in range(1, 11)]


def test_the_confusion_matrix_is_exact_at_every_threshold_the_slider_offers(guest_sections, runs):
    from engine.evaluation import confusion_at_threshold

    predictions = runs["predict"]["guest"]["outputs"]["predictions"]
    chart = _chart(guest_sections["evaluation"], "confusion")
    cells = chart["confusion"]["cells"]
    assert len(cells) > 20
    thresholds = [c["threshold"] for c in cells]
    assert thresholds == sorted(thresholds)
    for cell in cells:
        exact = confusion_at_threshold(predictions["y"], predictions["probability"], cell["threshold"])
        assert (cell["tp"], cell["fp"], cell["fn"], cell["tn"]) == (exact["tp"], exact["fp"], exact["fn"], exact["tn"])
    default = cells[chart["confusion"]["default"]]
    report = _final(runs, "evaluation")["data"]["confusion"]
    assert default["threshold"] == report["threshold"] == 0.5
    assert [[default["tn"], default["fp"]], [default["fn"], default["tp"]]] == report["matrix"]


def test_secureboost_per_tree_validation_and_our_importance(guest_sections, runs):
    final = _final(runs, "boost")
    boost = guest_sections["boost"]
    validation = {s["label"]: s["data"] for s in _chart(boost, "validation")["series"]}
    assert validation["AUC"] == pytest.approx([h["validate_auc"] for h in final["history"]])
    importance = _chart(boost, "importance")
    ours, theirs = importance["series"]
    assert dict(zip(importance["labels"], ours["data"])) == pytest.approx(
        {**{name: d["gain"] for name, d in final["feature_importance"]["guest"].items()},
         "All of the partner's features together": None})
    assert theirs["data"][importance["labels"].index("All of the partner's features together")] == pytest.approx(
        final["feature_importance"]["host"]["gain"])
    # The scoring node carries its own evaluation of the validation rows.
    predict = guest_sections["boost_predict"]
    assert _facts(predict)["AUC"] == pytest.approx(_final(runs, "boost_predict")["evaluation"]["auc"])
    assert _chart(predict, "roc")["series"][0]["label"] == "Validation rows"


def test_scorecard_points_follow_the_scaling(guest_sections, runs):
    final = _final(runs, "scorecard")
    points = _chart(guest_sections["scorecard"], "points")
    by_probability = dict(points["table"]["rows"])
    # At the base odds (50 good to 1 bad) a row scores the base score.
    offset, factor = final["offset"], final["factor"]
    assert by_probability[0.5] == pytest.approx(offset)
    assert by_probability[0.1] == pytest.approx(offset + factor * np.log(9))
    assert _facts(guest_sections["scorecard"])["Base score"] == 600


def test_the_host_sees_its_own_weights_importance_and_iv_and_no_evaluation(project, alice, runs):
    job = make_finished_job(project, alice, runs, role="host")
    sections = {s["node"]: s for s in presenters.job_results(job, alice)}
    assert "evaluation" not in sections and "scorecard" not in sections  # they run at the label holder only
    body = runs["lr"]["host"]["outputs"]["model"]["body"]
    weights = _chart(sections["lr"], "weights")
    assert set(weights["labels"]) == set(body["features"])
    assert "lr-loss" not in {c["id"] for c in sections["lr"]["charts"]}  # the loss is the guest's
    importance = _chart(sections["boost"], "importance")
    host_importance = _final(runs, "boost", "host")["feature_importance"]
    assert dict(zip(importance["labels"], importance["series"][0]["data"])) == {
        name: d["splits"] for name, d in host_importance.items()}
    iv = _chart(sections["binning"], "iv")
    assert dict(zip(iv["labels"], iv["series"][0]["data"])) == pytest.approx(_final(runs, "binning", "host")["iv"])
    assert len(iv["series"]) == 1
    assert "roc" not in json.dumps(sections["predict"])


def test_an_unknown_component_gets_a_plain_table_of_its_numbers(project, alice):
    job = Job.objects.create(project=project, name="x", spec={"nodes": [{"id": "magic", "component": "magic"}]},
                             initiator="site-1", status=JobStatus.SUCCEEDED)
    Task.objects.create(job=job, node="magic", site=Task.OURS, party="site-1", role="guest", component="magic",
                        version="1.0.0", status=TaskStatus.SUCCEEDED,
                        metrics={"series": {}, "final": {"rows": 12, "name": "x", "nested": {"a": 1.5}, "big": [1, 2]}})
    (section,) = presenters.job_results(job, alice)
    assert _chart(section, "metrics")["table"]["rows"] == [["name", "x"], ["nested.a", 1.5], ["rows", 12]]


def test_metrics_of_an_unexpected_shape_fall_back_to_the_plain_table(project, alice):
    job = Job.objects.create(project=project, name="x", spec={"nodes": []}, initiator="site-1",
                             status=JobStatus.SUCCEEDED)
    Task.objects.create(job=job, node="evaluation", site=Task.OURS, party="site-1", role="guest",
                        component="evaluation", version="9.0.0", status=TaskStatus.SUCCEEDED,
                        metrics={"final": {"data": {"roc": {"fpr": "nope"}, "auc": 0.7}}})
    (section,) = presenters.job_results(job, alice)
    assert section["charts"][0]["id"] == "evaluation-metrics"
    assert ["data.auc", 0.7] in section["charts"][0]["table"]["rows"]


def test_a_missing_model_file_is_said_in_words(project, alice, runs, settings):
    from jobs import artifacts

    job = make_finished_job(project, alice, runs)
    task = Task.objects.get(job=job, site=Task.OURS, node="binning")
    artifacts.path_of(task.outputs["model"], "model").unlink()
    binning = next(s for s in presenters.job_results(job, alice) if s["node"] == "binning")
    assert "binning-woe" not in {c["id"] for c in binning["charts"]}
    assert "binning-iv" in {c["id"] for c in binning["charts"]}  # the metrics still have the IVs
    assert any("no longer in this site's artifact store" in note for note in binning["notes"])


def test_the_job_page_embeds_each_chart_once_with_its_test_ids(project, alice, runs, client_as):
    job = make_finished_job(project, alice, runs)
    page = client_as(alice).get(f"/jobs/{job.pk}/").content.decode()
    for testid in ("chart-evaluation-roc", "chart-evaluation-ks", "chart-binning-iv", "chart-lr-loss",
                   "chart-evaluation-confusion", "numbers-evaluation-roc", "chart-statistics-features"):
        assert f'data-testid="{testid}"' in page
    assert page.count("vendor/chartjs/chart-4.6.1.umd.min.js") == 1
    assert page.count("frontend/charts.js") == 1
    assert f"/jobs/{job.pk}/nodes/psi/download/?port=data" in page
    results = page[page.index('data-testid="results"'):]
    assert results.count('type="application/json"') == sum(len(s["charts"]) for s in presenters.job_results(job, alice))


def test_a_job_without_results_loads_no_chart_code(project, alice, client_as):
    job = Job.objects.create(project=project, name="x", spec={"nodes": []}, initiator="site-1")
    page = client_as(alice).get(f"/jobs/{job.pk}/").content.decode()
    assert "charts.js" not in page


def test_including_the_results_twice_adds_no_duplicate_ids(project, alice, runs):
    from django.template import Context, Template

    job = make_finished_job(project, alice, runs)
    template = Template("{% include 'jobs/_results.html' with sections=results %}"
                        "{% include 'jobs/_results.html' with sections=results %}")
    html = template.render(Context({"results": presenters.job_results(job, alice), "job": job}))
    assert ' id="' not in html  # charts.js finds each chart's data inside its own figure
    assert html.count("frontend/charts.js") == 2  # and runs only once (it checks)
