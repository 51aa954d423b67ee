"""What a finished job shows: per node, the charts and tables of its results at this site.

``job_results(job, user)`` turns our finished tasks (succeeded or reused) into a list of
*sections*, one per node in the order of the job's spec. Everything here is plain data
(dicts, lists, strings, numbers; JSON-serialisable) so the template only lays it out and
``frontend/static/frontend/charts.js`` draws it. The shapes:

section::

    {"node": "binning", "component": "hetero_binning", "role": "guest", "status": "succeeded",
     "title": "Binning: WOE and IV", "notes": ["..."],
     "summary": [{"label": "Rows", "value": 456, "format": "int"}, ...],
     "charts": [chart, ...],
     "downloads": [{"port": "data", "label": "Download the overlap (CSV)"}]}

chart::

    {"id": "binning-iv",            # <node>-<name>: the page's data-testid is "chart-" + id
     "kind": "bar" | "line" | "xy" | "confusion" | "table",
     "title", "description", "x_label", "y_label",
     "labels": [...],              # categories of a bar or line chart
     "series": [{"label", "data", "style"}],   # data: one value per label, or [x, y] pairs for "xy";
                                               # style: "reference" (dashed guide), "marker", "line" (in a bar chart)
     "options": {"horizontal", "x_format", "y_format", "x_min", "x_max", "y_min", "y_max", "sign_colors",
                 "show_numbers"},
     "table": {"columns": [{"key", "label", "format"}], "rows": [[...], ...]},   # the same numbers
     "highlights": [{"label", "value", "format"}],
     "variants": {"label": "Feature", "items": [{"key", "label", "labels", "series", "table", "y_label"}]},
     "confusion": {...},           # kind "confusion" only: exact counts per threshold, see _confusion
     "filename": "<job>-<id>.csv"}

Formats are "int", "num", "pct" (a share 0..1), "score" (a threshold), "metric" (AUC, KS: four decimals),
"text" or "auto" (numbers as "num", anything else as text); numbers are
formatted in the browser for the page's language.

Only what this site holds is shown: our own tasks' metrics and, for a few components,
our own half of the model (the WOE tables of binning, this side's LR weights), read from
the artifact store. The partner's mirrors carry no metrics, and the partner's half of a
model never reaches this site.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Any

from django.utils.translation import gettext as _

from .models import Task, TaskStatus

log = logging.getLogger(__name__)

Section = dict[str, Any]

# Information value bands, the usual credit-scoring rule of thumb, so an analyst sees
# what a number means without knowing it.
IV_BANDS = ((0.02, "not_useful"), (0.1, "weak"), (0.3, "medium"), (0.5, "strong"), (math.inf, "very_strong"))


def job_results(job, user) -> list[Section]:
    """The result sections of ``job`` at this site, one per finished node of ours."""
    tasks = {t.node: t for t in job.tasks.filter(site=Task.OURS, status__in=TaskStatus.done())}
    nodes = [n.get("id") for n in (job.spec or {}).get("nodes", []) if isinstance(n, dict)]
    nodes += sorted(set(tasks) - set(nodes))  # a task whose node the spec no longer names still has results
    sections = []
    for node in nodes:
        task = tasks.get(node)
        if task is None:
            continue
        view = _View(job, task, user)
        presenter = PRESENTERS.get(task.component, present_generic)
        try:
            presenter(view)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, ZeroDivisionError):
            log.exception("results of node %s (%s) could not be laid out", node, task.component)
            # Metrics of an older component version this page does not know: show the plain numbers
            # rather than nothing (and rather than breaking the job page).
            view = _View(job, task, user)
            present_generic(view)
            view.notes.append(_("These results are shown as a plain list: this page does not know their layout."))
        sections.append(view.section())
    return sections


# --------------------------------------------------------------------------- building blocks


def _finite(value: Any) -> float | int | None:
    """A number fit for JSON and charts (whole numbers stay whole), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return value
    return value if math.isfinite(value) else None


def _col(key: str, label: str, fmt: str = "num") -> dict:
    return {"key": key, "label": label, "format": fmt}


def _fact(label: str, value: Any, fmt: str = "num") -> dict:
    if fmt != "text":
        value = _finite(value)
    return {"label": label, "value": value, "format": fmt}


_LONG_FLOAT = re.compile(r"-?\d+\.\d{5,}")


def _tidy_label(label: Any) -> str:
    """Bin labels carry float artefacts ("(15.056000000000001, 17.068]"); six significant digits read better."""
    return _LONG_FLOAT.sub(lambda m: f"{float(m.group()):.6g}", str(label))


class _View:
    """One section being built: the task, what the spec says about its node, and helpers."""

    def __init__(self, job, task: Task, user):
        self.job, self.task, self.user = job, task, user
        self.node = task.node
        metrics = task.metrics or {}
        self.final = metrics.get("final") if isinstance(metrics.get("final"), dict) else {}
        self.series = metrics.get("series") if isinstance(metrics.get("series"), dict) else {}
        self.title = COMPONENT_TITLES.get(task.component, lambda: task.component)()
        self.notes: list[str] = []
        self.summary: list[dict] = []
        self.charts: list[dict] = []
        self.downloads: list[dict] = []
        if task.status == TaskStatus.REUSED:
            self.notes.append(_("Reused from an earlier job: the inputs and settings were the same, so it did not "
                                "run again."))

    def section(self) -> Section:
        return {"node": self.node, "component": self.task.component, "role": self.task.role,
                "status": self.task.status, "title": self.title, "notes": self.notes, "summary": self.summary,
                "charts": self.charts, "downloads": self.downloads}

    def fact(self, label: str, value: Any, fmt: str = "num") -> None:
        if value is None or (fmt != "text" and _finite(value) is None):
            return
        self.summary.append(_fact(label, value, fmt))

    def chart(self, name: str, kind: str, title: str, *, table: dict, description: str = "", x_label: str = "",
              y_label: str = "", labels: list | None = None, series: list | None = None, options: dict | None = None,
              highlights: list | None = None, **extra) -> dict:
        from datasets.services import download_filename

        chart_id = f"{self.node}-{name}"
        chart = {"id": chart_id, "kind": kind, "title": title, "description": description, "x_label": x_label,
                 "y_label": y_label, "labels": labels or [], "series": series or [], "options": options or {},
                 "table": table, "highlights": highlights or [],
                 "filename": download_filename(f"{self.job.name}-{chart_id}.csv"), **extra}
        self.charts.append(chart)
        return chart

    def params(self) -> dict:
        """This node's parameters for our role, as the spec gives them (common, then the role's own)."""
        for raw in (self.job.spec or {}).get("nodes", []):
            if isinstance(raw, dict) and raw.get("id") == self.node:
                params = raw.get("params") or {}
                return {**(params.get("common") or {}), **(params.get(self.task.role) or {})}
        return {}

    def upstream_final(self, port: str) -> dict:
        """The final metrics of our task that fed this node's input ``port`` (in this job or an earlier one)."""
        for raw in (self.job.spec or {}).get("nodes", []):
            if isinstance(raw, dict) and raw.get("id") == self.node:
                source = (raw.get("inputs") or {}).get(port)
                if isinstance(source, dict) and source.get("node"):
                    task = Task.objects.filter(job_id=source.get("job") or self.job.pk, node=source["node"],
                                               site=Task.OURS).first()
                    final = (task.metrics or {}).get("final") if task is not None else None
                    return final if isinstance(final, dict) else {}
        return {}

    def model(self, port: str = "model") -> dict | None:
        """Our half of a model this node produced (the body of its document), or None with a note."""
        from . import artifacts

        artifact_id = (self.task.outputs or {}).get(port)
        if not artifact_id:
            return None
        try:
            document = artifacts.load(artifact_id)
        except (artifacts.ArtifactMissing, ValueError, OSError):
            self.notes.append(_("The model file is no longer in this site's artifact store, so its details "
                                "cannot be shown."))
            return None
        body = document.get("body") if isinstance(document, dict) else None
        return body if isinstance(body, dict) else None


# --------------------------------------------------------------------------- PSI and data preparation


def present_psi(v: _View) -> None:
    f = v.final
    v.fact(_("Shared ids (the overlap)"), f.get("intersection_size"), "int")
    v.fact(_("Distinct ids in our table"), f.get("unique_ids"), "int")
    v.fact(_("Distinct ids in the partner's table"), f.get("peer_unique_ids"), "int")
    v.fact(_("Rows in our table"), f.get("input_rows"), "int")
    if f.get("duplicate_rows"):
        v.fact(_("Rows set aside as repeated ids"), f.get("duplicate_rows"), "int")
    ours, theirs, shared = (_finite(f.get(k)) for k in ("unique_ids", "peer_unique_ids", "intersection_size"))
    if ours:
        v.fact(_("Share of our ids that are shared"), shared / ours if shared is not None else None, "pct")
    revealed = bool(f.get("rows_revealed"))
    if revealed:
        v.fact(_("Rows in our overlap table"), f.get("output_rows"), "int")
    else:
        v.notes.append(_("Only the number of shared ids was revealed to this site: which ids they are stays unknown "
                         "here, so there is no overlap table to download."))
    if revealed and "data" in (v.task.outputs or {}) and v.user.can_write:
        v.downloads.append({"port": "data", "label": _("Download the overlap table (CSV)")})
    if ours is not None and theirs is not None and shared is not None:
        labels = [_("Our ids"), _("The partner's ids"), _("Shared")]
        v.chart("overlap", "bar", _("How much the two tables overlap"),
                description=_("Distinct ids on each side and how many both sides have."),
                labels=labels, series=[{"label": _("Ids"), "data": [ours, theirs, shared]}],
                x_label=_("Ids"), options={"horizontal": True, "x_format": "int", "x_min": 0},
                table={"columns": [_col("what", _("What"), "text"), _col("ids", _("Ids"), "int")],
                       "rows": [[label, value] for label, value in zip(labels, [ours, theirs, shared])]})


def present_split(v: _View) -> None:
    f = v.final
    v.fact(_("Rows"), f.get("rows"), "int")
    v.fact(_("Training rows"), f.get("train_rows"), "int")
    v.fact(_("Validation rows"), f.get("validate_rows"), "int")
    v.fact(_("Event rate in training rows"), f.get("train_event_rate"), "pct")
    v.fact(_("Event rate in validation rows"), f.get("validate_event_rate"), "pct")
    if f.get("method") == "stratified":
        v.notes.append(_("Stratified: both parts keep the same share of events as the whole table."))


def present_preprocess(v: _View) -> None:
    f = v.final
    v.fact(_("Rows"), f.get("rows"), "int")
    v.fact(_("Columns in"), len(f.get("input_columns") or []), "int")
    v.fact(_("Columns out"), len(f.get("output_columns") or []), "int")
    dropped = f.get("dropped") or []
    if dropped:
        names = [d.get("name", str(d)) if isinstance(d, dict) else str(d) for d in dropped]
        v.fact(_("Columns dropped"), ", ".join(names), "text")
    if f.get("fitted") is False:
        v.notes.append(_("An earlier fitted preparation was applied unchanged."))


STAT_COLUMNS = (("count", "int"), ("missing", "int"), ("missing_rate", "pct"), ("mean", "num"), ("std", "num"),
                ("min", "num"), ("q25", "num"), ("median", "num"), ("q75", "num"), ("max", "num"),
                ("distinct", "int"), ("zeros", "int"))


def present_statistics(v: _View) -> None:
    f = v.final
    v.fact(_("Rows"), f.get("rows"), "int")
    label = f.get("label") if isinstance(f.get("label"), dict) else None
    if label:
        v.fact(_("Label column"), label.get("column"), "text")
        v.fact(_("Event rate (label 1)"), label.get("event_rate"), "pct")
        for value, count in sorted((label.get("classes") or {}).items()):
            v.fact(_("Rows with label %(value)s") % {"value": value}, count, "int")
    titles = {"count": _("Values"), "missing": _("Missing"), "missing_rate": _("Missing rate"), "mean": _("Mean"),
              "std": _("Std. deviation"), "min": _("Minimum"), "q25": _("25th percentile"), "median": _("Median"),
              "q75": _("75th percentile"), "max": _("Maximum"), "distinct": _("Distinct values"),
              "zeros": _("Zeros")}
    columns = [_col("feature", _("Feature"), "text"), _col("type", _("Type"), "text")]
    columns += [_col(key, titles[key], fmt) for key, fmt in STAT_COLUMNS]
    columns.append(_col("top", _("Most common values"), "text"))
    rows = []
    for name, s in (f.get("columns") or {}).items():
        quantiles = s.get("quantiles") or {}
        values = {**s, "q25": quantiles.get("0.25"), "median": quantiles.get("0.5"), "q75": quantiles.get("0.75")}
        top = ", ".join(f"{t.get('value')} ({t.get('count')})" for t in (s.get("top") or [])[:5])
        kind = _("category") if s.get("type") == "categorical" else _("number")
        rows.append([name, kind] + [_finite(values.get(key)) for key, _fmt in STAT_COLUMNS] + [top])
    v.chart("features", "table", _("Each feature at a glance"),
            description=_("Computed on this site's own rows only; the partner's columns are not included."),
            table={"columns": columns, "rows": rows})


# --------------------------------------------------------------------------- binning and selection


def _iv_band(iv: float | None) -> str:
    words = {"not_useful": _("Not useful"), "weak": _("Weak"), "medium": _("Medium"), "strong": _("Strong"),
             "very_strong": _("Very strong: check it is not a stand-in for the label")}
    if iv is None:
        return ""
    return next(words[key] for limit, key in IV_BANDS if iv < limit)


def present_binning(v: _View) -> None:
    f = v.final
    ours_label, theirs_label = _("Our features"), _("The partner's features")
    v.fact(_("Rows"), f.get("rows"), "int")
    v.fact(_("Events (label 1)"), f.get("events"), "int")
    v.fact(_("Non-events (label 0)"), f.get("non_events"), "int")
    features: list[tuple[str, str, float | None]] = []  # (name, party, iv)
    if v.task.role == "guest":
        for item in f.get("features") or []:
            name = item.get("display_name") or item.get("feature")
            party = "ours" if item.get("party") == v.task.role else "theirs"
            features.append((name, party, _finite(item.get("iv"))))
        if not features:
            features = [(n, "ours", _finite(iv)) for n, iv in (f.get("iv") or {}).items()]
            features += [(n, "theirs", _finite(iv)) for n, iv in (f.get("host_iv") or {}).items()]
        theirs = [n for n, p, _iv in features if p == "theirs"]
        if theirs and all(re.fullmatch(r"h\d+", str(n)) for n in theirs):
            v.notes.append(_("The partner's features are shown under opaque names (h0, h1, ...): the partner chose not "
                             "to share their real names."))
    else:
        learned = f.get("iv") or {}
        for item in f.get("features") or []:
            name = item.get("feature")
            features.append((name, "ours", _finite(item.get("iv", learned.get(name)))))
        if f.get("host_learns") == "nothing":
            v.notes.append(_("The label holder did not send back the IV of our features (the project's setting), "
                             "so only the bins are shown."))
    with_iv = sorted((x for x in features if x[2] is not None), key=lambda x: -x[2])
    v.fact(_("Features binned"), len(features), "int")
    if with_iv:
        names = [n for n, _p, _iv in with_iv]
        series = [{"label": ours_label, "data": [iv if p == "ours" else None for _n, p, iv in with_iv]}]
        if any(p == "theirs" for _n, p, _iv in with_iv):
            series.append({"label": theirs_label, "data": [iv if p == "theirs" else None for _n, p, iv in with_iv]})
        v.chart("iv", "bar", _("Predictive power of each feature (IV)"),
                description=_("Information value: how well a feature alone separates events from non-events. "
                              "Below 0.02 it is of no use; above 0.5 check it is not a stand-in for the label."),
                labels=names, series=series, x_label=_("Information value (IV)"),
                options={"horizontal": True, "x_min": 0, "stacked": True},
                table={"columns": [_col("feature", _("Feature"), "text"), _col("party", _("Whose"), "text"),
                                   _col("iv", _("IV"), "num"), _col("strength", _("Strength"), "text")],
                       "rows": [[n, _("Ours") if p == "ours" else _("The partner's"), iv, _iv_band(iv)]
                                for n, p, iv in with_iv]})
    _woe_tables(v)


def _woe_tables(v: _View) -> None:
    body = v.model()
    if not body:
        return
    items = []
    for feature in body.get("features") or []:
        bins = feature.get("bins") or []
        if not bins:
            continue
        own = feature.get("own", feature.get("party") == v.task.role)
        name = feature.get("display_name") or feature.get("name")
        has_events = any("events" in b for b in bins)
        has_woe = any(_finite(b.get("woe")) is not None for b in bins)
        columns = [_col("bin", _("Bin"), "text"), _col("count", _("Rows"), "int")]
        if has_events:
            columns += [_col("events", _("Events"), "int"), _col("non_events", _("Non-events"), "int"),
                        _col("event_rate", _("Event rate"), "pct")]
        if has_woe:
            columns.append(_col("woe", _("WOE"), "num"))
        if any("iv" in b for b in bins):
            columns.append(_col("iv", _("IV of the bin"), "num"))
        keys = [c["key"] for c in columns]
        labels = [_bin_label(feature, b, i, len(bins)) for i, b in enumerate(bins)]
        rows = [[label] + [_finite(b.get(k)) for k in keys[1:]] for label, b in zip(labels, bins)]
        if has_woe:
            series = [{"label": _("WOE"), "data": [_finite(b.get("woe")) for b in bins]}]
            y_label = _("Weight of evidence (WOE)")
        else:
            series = [{"label": _("Rows"), "data": [_finite(b.get("count")) for b in bins]}]
            y_label = _("Rows")
        label = (_("%(name)s (ours)") if own else _("%(name)s (partner's)")) % {"name": name}
        items.append({"key": str(feature.get("name")), "label": label, "labels": labels,
                      "series": series, "y_label": y_label, "table": {"columns": columns, "rows": rows},
                      "iv": _finite(feature.get("iv")), "own": bool(own), "has_woe": has_woe})
    if not items:
        return
    # The strongest feature first: that is the one an analyst looks at first.
    items.sort(key=lambda item: -(item["iv"] if item["iv"] is not None else -1))
    first = items[0]
    with_woe = any(item["has_woe"] for item in items)
    if with_woe:
        title = _("Bins of one feature (WOE)")
        description = _("Weight of evidence per bin: above 0 the bin holds more events than average, below 0 fewer.")
        if any(not item["own"] for item in items):
            description += " " + _("The partner's features show their bins only by number: their cut points stay at "
                                   "the partner.")
    else:
        # The host learns a bin's WOE only if the project lets the label holder send it back.
        title = _("Bins of one feature")
        description = _("Rows per bin. The label holder did not send back the WOE of our bins (the project's "
                        "setting), so only the counts are shown.")
    v.chart("woe", "bar", title, description=description,
            labels=first["labels"], series=first["series"], x_label=_("Bin"), y_label=first["y_label"],
            options={"sign_colors": with_woe, "show_numbers": True}, table=first["table"],
            variants={"label": _("Feature"), "items": items})


def _bin_label(feature: dict, b: dict, index: int, count: int) -> str:
    """A bin's name in the page's language: the engine names the missing, "other" and opaque bins in English."""
    label = b.get("label", b.get("bin"))
    if b.get("missing") or (index == count - 1 and label == "missing"):
        return _("Missing")
    if label == "__other__" and index == count - 2 and (feature.get("spec") or {}).get("type") != "numeric":
        return _("Other categories")
    opaque = re.fullmatch(r"bin (\d+)", str(label))
    if opaque and not feature.get("own", True):
        return _("Bin %(number)s") % {"number": opaque.group(1)}
    return _tidy_label(label)


SELECTION_REASONS = {
    "iv": lambda: _("Predictive power (IV) too low"),
    "missing_rate": lambda: _("Too many missing values"),
    "variance": lambda: _("Almost constant"),
    "correlation": lambda: _("Nearly the same as another feature"),
}


def present_selection(v: _View) -> None:
    f = v.final
    v.fact(_("Our features considered"), f.get("candidates"), "int")
    v.fact(_("Our features kept"), f.get("kept"), "int")
    dropped = {d.get("name"): d for d in f.get("dropped") or [] if isinstance(d, dict)}
    v.fact(_("Our features dropped"), len(dropped), "int")
    rows = []
    for name, details in (f.get("columns") or {}).items():
        drop = dropped.get(name)
        reason = ""
        if drop:
            reason = SELECTION_REASONS.get(drop.get("reason"), lambda: str(drop.get("reason")))()
            if drop.get("partner"):
                reason += " (" + str(drop["partner"]) + ")"
        rows.append([name, _("Ours"), _("Dropped") if drop else _("Kept"), reason,
                     _finite(details.get("iv")), _finite(details.get("missing_rate")),
                     _finite(details.get("variance"))])
    # The guest also decides on the partner's features by their IV; it knows them by opaque id, and their IV
    # from the binning this selection used.
    kept, iv_dropped = f.get("host_keep") or [], f.get("host_iv_dropped") or []
    if kept or iv_dropped:
        host_iv = v.upstream_final("binning").get("host_iv") or {}
        v.fact(_("Partner's features kept"), len(kept), "int")
        v.fact(_("Partner's features dropped"), len(iv_dropped), "int")
        for name in kept:
            rows.append([name, _("The partner's"), _("Kept"), "", _finite(host_iv.get(name)), None, None])
        for name in iv_dropped:
            rows.append([name, _("The partner's"), _("Dropped"), SELECTION_REASONS["iv"](), _finite(host_iv.get(name)),
                         None, None])
    rows.sort(key=lambda r: (r[2] != _("Kept"), -(r[4] if r[4] is not None else -1)))
    v.chart("features", "table", _("Kept and dropped features"),
            description=_("Which features go on to training, and why the others were left out."),
            table={"columns": [_col("feature", _("Feature"), "text"), _col("party", _("Whose"), "text"),
                               _col("decision", _("Decision"), "text"), _col("reason", _("Why dropped"), "text"),
                               _col("iv", _("IV"), "num"), _col("missing_rate", _("Missing rate"), "pct"),
                               _col("variance", _("Variance"), "num")],
                   "rows": rows})


# --------------------------------------------------------------------------- models


def _per_step(v: _View, names: list[str]) -> dict[str, list]:
    """Per epoch or tree: the final history when it has the figure (complete even after a resume), else the
    series the run reported as it went."""
    history = [h for h in v.final.get("history") or [] if isinstance(h, dict)]
    out = {}
    for name in names:
        if history and any(name in h for h in history):
            out[name] = [_finite(h.get(name)) for h in history]
        elif isinstance(v.series.get(name), list):
            out[name] = [_finite(x) for x in v.series[name]]
    return out


def _step_chart(v: _View, name: str, title: str, description: str, step: str, y_label: str, wanted: dict[str, str],
                y_format: str = "num", options: dict | None = None) -> None:
    values = _per_step(v, list(wanted))
    values = {k: xs for k, xs in values.items() if any(x is not None for x in xs)}
    if not values:
        return
    count = max(len(xs) for xs in values.values())
    labels = list(range(1, count + 1))
    series = [{"label": wanted[k], "data": xs + [None] * (count - len(xs))} for k, xs in values.items()]
    columns = [_col("step", step, "int")] + [_col(k, wanted[k], y_format) for k in values]
    rows = [[i] + [s["data"][i - 1] for s in series] for i in labels]
    v.chart(name, "line", title, description=description, labels=labels, series=series, x_label=step,
            y_label=y_label, options={"y_format": y_format, **(options or {})},
            table={"columns": columns, "rows": rows})


def _weights_chart(v: _View, name: str, pairs: list[tuple[str, float]], title: str, description: str,
                   value_label: str, *, signed: bool, fmt: str = "num") -> None:
    pairs = sorted(pairs, key=lambda p: -abs(p[1]))
    columns = [_col("feature", _("Feature"), "text"), _col("value", value_label, fmt)]
    rows = [[n, w] for n, w in pairs]
    v.chart(name, "bar", title, description=description, labels=[n for n, _w in pairs],
            series=[{"label": value_label, "data": [w for _n, w in pairs]}], x_label=value_label,
            options={"horizontal": True, "sign_colors": signed, "x_format": fmt},
            table={"columns": columns, "rows": rows})


def present_lr(v: _View) -> None:
    f = v.final
    epoch = _("Epoch")
    v.fact(_("Training rows"), f.get("rows"), "int")
    v.fact(_("Validation rows"), f.get("validation_rows") or None, "int")
    v.fact(_("Epochs run"), f.get("epochs"), "int")
    v.fact(_("Our features"), f.get("features"), "int")
    if f.get("best_epoch") is not None:
        v.fact(_("Best epoch"), f["best_epoch"] + 1, "int")
    if f.get("stopped_early"):
        v.notes.append(_("Training stopped early: the chosen measure stopped improving."))
    if f.get("resumed_from_epoch") is not None:
        v.notes.append(_("This run continued from a checkpoint both sites held."))
    v.fact(_("Final training loss"), f.get("train_loss"))
    v.fact(_("Validation AUC"), f.get("validation_auc"), "metric")
    v.fact(_("Validation KS"), f.get("validation_ks"), "metric")
    _step_chart(v, "loss", _("Loss per epoch"),
                _("Lower is better. If the validation loss rises while the training loss falls, the model is "
                  "learning the training rows by heart."),
                epoch, _("Loss"), {"train_loss": _("Training loss"), "validation_loss": _("Validation loss"),
                                   "validation_log_loss": _("Validation log loss")})
    _step_chart(v, "validation", _("Validation AUC and KS per epoch"),
                _("How well the model ranks validation rows after each epoch; higher is better."),
                epoch, _("Score"), {"validation_auc": _("AUC"), "validation_ks": _("KS")}, "metric", {"y_max": 1})
    body = v.model()
    if body and body.get("features"):
        pairs = [(str(n), _finite(w)) for n, w in zip(body["features"], body.get("weights") or [])]
        pairs = [(n, w) for n, w in pairs if w is not None]
        if "intercept" in body and v.task.role == "guest":
            v.fact(_("Intercept"), body.get("intercept"))
        if pairs:
            _weights_chart(v, "weights", pairs, _("Weights of our features"),
                           _("How much each of our features pushes the score up (positive) or down (negative), on "
                             "the features as they entered training. The partner's weights stay at the partner."),
                           _("Weight"), signed=True)


def present_boost(v: _View) -> None:
    f = v.final
    tree = _("Tree")
    v.fact(_("Trees grown"), f.get("trees_trained", f.get("trees")), "int")
    if f.get("best_trees") and f.get("best_trees") != f.get("trees_trained"):
        v.fact(_("Trees kept (best)"), f.get("best_trees"), "int")
    train = f.get("train") if isinstance(f.get("train"), dict) else {}
    v.fact(_("Training AUC"), train.get("auc"), "metric")
    v.fact(_("Training KS"), train.get("ks"), "metric")
    if v.task.role == "host":
        v.fact(_("Splits on our features"), f.get("splits"), "int")
    _step_chart(v, "loss", _("Log loss per tree"), _("Lower is better; each tree corrects the ones before it."),
                tree, _("Log loss"), {"train_logloss": _("Training rows"), "validate_logloss": _("Validation rows")})
    _step_chart(v, "validation", _("Validation AUC and KS per tree"),
                _("How well the trees so far rank the validation rows; higher is better."),
                tree, _("Score"), {"validate_auc": _("AUC"), "validate_ks": _("KS")}, "metric", {"y_max": 1})
    importance = f.get("feature_importance") or {}
    if v.task.role == "guest":
        # (name, whose, gain, splits): our features one by one, the partner's only as one total.
        bars = [(n, "ours", _finite(d.get("gain")), d.get("splits")) for n, d in (importance.get("guest") or {}).items()
                if isinstance(d, dict)]
        host = importance.get("host") or {}
        if _finite(host.get("gain")) is not None:
            together = _("All of the partner's features together")
            bars.append((together, "theirs", _finite(host["gain"]), host.get("splits")))
        bars = sorted((b for b in bars if b[2] is not None), key=lambda b: -b[2])
        if bars:
            total = sum(b[2] for b in bars) or 1.0
            series = [{"label": _("Our features"), "data": [g if p == "ours" else None for _n, p, g, _s in bars]}]
            if any(p == "theirs" for _n, p, _g, _s in bars):
                series.append({"label": _("The partner's features"),
                               "data": [g if p == "theirs" else None for _n, p, g, _s in bars]})
            v.chart("importance", "bar", _("Feature importance"),
                    description=_("Total gain of the splits on each feature. The partner's features are counted "
                                  "together: which of them were used stays at the partner."),
                    labels=[b[0] for b in bars], series=series, x_label=_("Gain"),
                    options={"horizontal": True, "stacked": True, "x_min": 0},
                    table={"columns": [_col("feature", _("Feature"), "text"), _col("gain", _("Gain")),
                                       _col("splits", _("Splits"), "int"), _col("share", _("Share of gain"), "pct")],
                           "rows": [[n, g, s, g / total] for n, _p, g, s in bars]})
    else:
        pairs = [(n, _finite(d.get("splits"))) for n, d in importance.items() if isinstance(d, dict)]
        pairs = [(n, s) for n, s in pairs if s is not None]
        if pairs:
            _weights_chart(v, "importance", pairs, _("Feature importance"),
                           _("How many tree splits use each of our features. The label holder keeps the gains."),
                           _("Splits"), signed=False, fmt="int")


def present_predict(v: _View) -> None:
    f = v.final
    v.fact(_("Rows scored"), f.get("rows"), "int")
    check = f.get("consistency_check")
    if isinstance(check, str):
        words = {"passed": _("Passed"), "failed": _("Failed")}
        shown = words.get(check, _("Not checked") if check.startswith("skipped") else check)
        v.fact(_("Model consistency check"), shown, "text")
    report = f.get("evaluation")
    if isinstance(report, dict) and report.get("roc"):
        _evaluation_charts(v, [("data", _set_label(v, v.node, "data") or _("Scored rows"), report)])
    elif v.task.role == "host":
        v.notes.append(_("The scores themselves are at the label holder's site; this site sent its partial scores."))


def present_evaluation(v: _View) -> None:
    f = v.final
    reports = []
    for port, default in (("data", _("Scored rows")), ("compare", _("Comparison rows"))):
        report = f.get(port)
        if isinstance(report, dict):
            reports.append((port, _set_label(v, v.node, port) or default, report))
    if len({label for _p, label, _r in reports}) < len(reports):
        reports = [(p, f"{label} ({p})", r) for p, label, r in reports]
    binary = [r for r in reports if r[2].get("task", "binary") == "binary" and r[2].get("roc")]
    if binary:
        _evaluation_charts(v, binary)
    for port, label, report in reports:
        if report.get("task") == "regression":
            for key, title in (("n", _("Rows")), ("rmse", _("RMSE")), ("mae", _("MAE")), ("r2", _("R²"))):
                v.fact(f"{title} · {label}", report.get(key), "int" if key == "n" else "num")


def _set_label(v: _View, node: str, port: str) -> str | None:
    """Name a scored table by where its rows came from: the split's training or validation part."""
    nodes = {n.get("id"): n for n in (v.job.spec or {}).get("nodes", []) if isinstance(n, dict)}
    source = ((nodes.get(node) or {}).get("inputs") or {}).get(port)
    for _hop in range(6):
        if not isinstance(source, dict) or "node" not in source or "job" in source:
            return None
        upstream = nodes.get(source["node"]) or {}
        if upstream.get("component") == "split":
            return {"train": _("Training rows"), "validate": _("Validation rows")}.get(source.get("output"))
        if upstream.get("component") == "psi":
            return _("All shared rows")
        source = (upstream.get("inputs") or {}).get("data")
    return None


def _evaluation_charts(v: _View, reports: list[tuple[str, str, dict]]) -> None:
    """ROC, KS, precision-recall, gain, lift and the confusion matrix of one or more scored tables."""
    _port, label0, first = reports[0]
    v.fact(_("AUC"), first.get("auc"), "metric")
    v.fact(_("KS"), first.get("ks"), "metric")
    v.fact(_("KS reached at score"), first.get("ks_threshold"), "score")
    v.fact(_("Average precision"), first.get("average_precision"), "metric")
    v.fact(_("Rows"), first.get("n"), "int")
    v.fact(_("Events (label 1)"), first.get("n_positive"), "int")
    if len(reports) > 1:
        v.notes.append(_("The figures above are for: %(first)s. The charts show every scored table side by side.")
                       % {"first": label0})
        _figures_table(v, reports)
    set_col = _col("rows", _("Rows scored"), "text")

    # ROC: caught events against false alarms, for every threshold.
    series, rows = [], []
    for _port, label, r in reports:
        roc = r["roc"]
        points = [[x, y] for x, y in zip(roc["fpr"], roc["tpr"])]
        series.append({"label": label, "data": points})
        rows += [[label, t, x, y] for (x, y), t in zip(points, roc.get("thresholds") or [None] * len(points))]
    series.append({"label": _("Random guess"), "data": [[0, 0], [1, 1]], "style": "reference"})
    v.chart("roc", "xy", _("ROC curve"),
            description=_("Each point is a threshold: the share of events caught against the share of non-events "
                          "wrongly flagged. The closer to the top left, the better; the diagonal is guessing."),
            x_label=_("Non-events flagged"), y_label=_("Events caught"),
            series=series, options=_unit_axes(), highlights=[_fact(_("AUC") + " · " + label, r.get("auc"), "metric")
                                                             for _p, label, r in reports],
            table={"columns": [set_col, _col("threshold", _("Threshold"), "score"),
                               _col("fpr", _("False positive rate"), "pct"),
                               _col("tpr", _("True positive rate"), "pct")],
                   "rows": rows})

    # KS: the same curve against the depth of the list, one chart per scored table.
    for index, (port, label, r) in enumerate(reports):
        _ks_chart(v, "ks" if index == 0 else f"ks-{port}", label, r)

    # Precision-recall: how clean the flagged rows are as more events are caught.
    series, rows = [], []
    for _port, label, r in reports:
        pr = r.get("pr") or {}
        points = [[x, y] for x, y in zip(pr.get("recall") or [], pr.get("precision") or [])]
        series.append({"label": label, "data": points})
        rows += [[label, t, x, y] for (x, y), t in zip(points, pr.get("thresholds") or [None] * len(points))]
    if _finite(first.get("n")):
        base = first["n_positive"] / first["n"]
        series.append({"label": _("Share of events (no model)"), "data": [[0, base], [1, base]], "style": "reference"})
    v.chart("pr", "xy", _("Precision and recall"),
            description=_("Of the rows flagged, the share that really are events (precision), as the share of all "
                          "events caught (recall) grows."),
            x_label=_("Recall: events caught"), y_label=_("Precision"), series=series,
            options=_unit_axes(),
            highlights=[_fact(_("Average precision") + " · " + label, r.get("average_precision"), "metric")
                        for _p, label, r in reports],
            table={"columns": [set_col, _col("threshold", _("Threshold"), "score"),
                               _col("recall", _("Recall"), "pct"), _col("precision", _("Precision"), "pct")],
                   "rows": rows})

    # Gain and lift, from the table of score groups (highest scores first).
    lift_columns = [set_col, _col("bin", _("Score group"), "int"), _col("count", _("Rows"), "int"),
                    _col("positives", _("Events"), "int"), _col("min_score", _("Lowest score"), "score"),
                    _col("max_score", _("Highest score"), "score"), _col("response_rate", _("Event rate"), "pct"),
                    _col("lift", _("Lift"), "num"), _col("cumulative_count", _("Rows so far"), "int"),
                    _col("gain", _("Gain (events caught so far)"), "pct"),
                    _col("cumulative_lift", _("Cumulative lift"), "num")]
    lift_rows, gain_series, lift_series, groups = [], [], [], []
    for _port, label, r in reports:
        table = [row for row in r.get("lift") or [] if isinstance(row, dict)]
        n = _finite(r.get("n")) or 1
        lift_rows += [[label] + [row.get(c["key"]) for c in lift_columns[1:]] for row in table]
        gain = [[0, 0]] + [[row["cumulative_count"] / n, row["gain"]] for row in table]
        gain_series.append({"label": label, "data": gain})
        lift_series.append({"label": label, "data": [row.get("lift") for row in table]})
        if len(table) > len(groups):
            # Groups differ in size by one row at most, so name them by their nominal share (top 10%, 20%...).
            groups = [_("Top %(percent)s%%") % {"percent": round(100 * (i + 1) / len(table))}
                      for i in range(len(table))]
    lift_table = {"columns": lift_columns, "rows": lift_rows}
    if lift_rows:
        gain_series.append({"label": _("Random order"), "data": [[0, 0], [1, 1]], "style": "reference"})
        v.chart("gain", "xy", _("Gain"),
                description=_("Work down the list from the highest score: the share of all events found after "
                              "contacting each share of the rows."),
                x_label=_("Rows contacted, highest scores first"), y_label=_("Events found"), series=gain_series,
                options=_unit_axes(), table=lift_table)
        lift_series.append({"label": _("No model"), "data": [1] * len(groups), "style": "reference"})
        v.chart("lift", "bar", _("Lift by score group"),
                description=_("How many times more events each group of rows holds than a random group of the same "
                              "size. The first groups should be well above 1."),
                labels=groups, series=lift_series, x_label=_("Score group (highest scores first)"), y_label=_("Lift"),
                options={"y_min": 0}, table=lift_table)

    for index, (port, label, r) in enumerate(reports):
        _confusion(v, "confusion" if index == 0 else f"confusion-{port}", label, r)


def _unit_axes() -> dict:
    return {"x_min": 0, "x_max": 1, "y_min": 0, "y_max": 1, "x_format": "pct", "y_format": "pct"}


def _figures_table(v: _View, reports) -> None:
    keys = (("n", _("Rows")), ("n_positive", _("Events (label 1)")), ("auc", _("AUC")), ("ks", _("KS")),
            ("ks_threshold", _("KS reached at score")), ("average_precision", _("Average precision")))
    # One row per measure and a column per table reads like the comparison an analyst makes.
    columns = [_col("measure", _("Measure"), "text")] + [_col(port, label, "num") for port, label, _r in reports]
    rows = [[title] + [_finite(r.get(key)) for _p, _l, r in reports] for key, title in keys]
    v.chart("figures", "table", _("Key figures side by side"),
            description=_("A large gap between training and validation rows means the model fits its "
                          "training rows better than new ones."),
            table={"columns": columns, "rows": rows})


def _counts_at(r: dict) -> list[dict]:
    """Exact confusion counts at every threshold the report's curves carry.

    A ROC point at threshold t gives the share of events and of non-events scoring at least t, so with
    the numbers of each the counts are whole numbers again; the precision-recall points (not thinned
    of collinear points like the ROC) add thresholds in between, and the report's own matrix adds its
    threshold. The slider only offers these thresholds, so every matrix shown is exact, not interpolated.
    """
    pos, neg = int(r.get("n_positive") or 0), int(r.get("n_negative") or 0)
    grid: dict[float, tuple[int, int]] = {}
    roc = r.get("roc") or {}
    for t, fpr, tpr in zip(roc.get("thresholds") or [], roc.get("fpr") or [], roc.get("tpr") or []):
        if _finite(t) is not None and t <= 1.0:
            grid[float(t)] = (round(tpr * pos), round(fpr * neg))
    pr = r.get("pr") or {}
    for t, recall, precision in zip(pr.get("thresholds") or [], pr.get("recall") or [], pr.get("precision") or []):
        if _finite(t) is None or float(t) in grid or not precision:
            continue  # no threshold, or no way back from precision 0 to a count of non-events
        tp = round(recall * pos)
        grid[float(t)] = (tp, round(tp / precision - tp))
    confusion = r.get("confusion") or {}
    if _finite(confusion.get("threshold")) is not None and "tp" in confusion:
        grid[float(confusion["threshold"])] = (int(confusion["tp"]), int(confusion["fp"]))
    # Above every score nothing is flagged; the curves start there but give it no usable threshold.
    return [{"threshold": t, "tp": tp, "fp": fp, "fn": pos - tp, "tn": neg - fp}
            for t, (tp, fp) in sorted(grid.items())]


def _confusion(v: _View, name: str, label: str, r: dict) -> None:
    cells = _counts_at(r)
    if not cells:
        return
    wanted = _finite((r.get("confusion") or {}).get("threshold"))
    default = min(range(len(cells)), key=lambda i: abs(cells[i]["threshold"] - (wanted if wanted is not None else 0.5)))
    columns = [_col("threshold", _("Threshold"), "score"), _col("tp", _("Events caught"), "int"),
               _col("fp", _("False alarms"), "int"), _col("fn", _("Events missed"), "int"),
               _col("tn", _("Non-events passed"), "int")]
    v.chart(name, "confusion", _("Confusion matrix · %(rows)s") % {"rows": label},
            description=_("Move the threshold: rows scoring at least the threshold are predicted 1 (event). "
                          "A lower threshold catches more events and raises more false alarms."),
            table={"columns": columns, "rows": [[c["threshold"], c["tp"], c["fp"], c["fn"], c["tn"]] for c in cells]},
            confusion={"cells": cells, "default": default, "n": int(r.get("n") or 0),
                       "words": {"threshold": _("Threshold"), "predicted": _("Predicted"), "actual": _("Actual"),
                                 "event": _("Event (1)"), "non_event": _("Non-event (0)"),
                                 "precision": _("Precision"), "recall": _("Recall (events caught)"),
                                 "accuracy": _("Accuracy"), "f1": _("F1"), "flagged": _("Rows flagged"),
                                 "tp": _("Events caught"), "fp": _("False alarms"), "fn": _("Events missed"),
                                 "tn": _("Non-events passed")}})


def _ks_chart(v: _View, name: str, label: str, r: dict) -> None:
    roc = r["roc"]
    pos, neg = r.get("n_positive") or 0, r.get("n_negative") or 0
    n = (pos + neg) or 1
    rows = []
    for t, fpr, tpr in zip(roc.get("thresholds") or [None] * len(roc["fpr"]), roc["fpr"], roc["tpr"]):
        rows.append([t, (tpr * pos + fpr * neg) / n, tpr, fpr, tpr - fpr])
    if not rows:
        return
    best = max(rows, key=lambda row: row[4])
    series = [{"label": _("Events caught"), "data": [[row[1], row[2]] for row in rows]},
              {"label": _("Non-events flagged"), "data": [[row[1], row[3]] for row in rows]},
              {"label": _("KS (largest gap)"), "data": [[best[1], best[3]], [best[1], best[2]]], "style": "marker"}]
    v.chart(name, "xy", _("KS curve · %(rows)s") % {"rows": label},
            description=_("Going down the list from the highest score, the share of events and of non-events "
                          "flagged so far. KS is the largest gap between the two."),
            x_label=_("Rows flagged, highest scores first"), y_label=_("Share caught"), series=series,
            options=_unit_axes(),
            highlights=[_fact(_("KS"), r.get("ks"), "metric"), _fact(_("at score"), r.get("ks_threshold"), "score")],
            table={"columns": [_col("threshold", _("Threshold"), "score"), _col("depth", _("Rows flagged"), "pct"),
                               _col("tpr", _("Events caught"), "pct"), _col("fpr", _("Non-events flagged"), "pct"),
                               _col("gap", _("Gap"), "num")],
                   "rows": rows})


def present_scorecard(v: _View) -> None:
    from engine.ml import scorecard as scorecard_math

    f = v.final
    v.fact(_("Base score"), f.get("base_score"))
    v.fact(_("At odds of"), f.get("base_odds"))
    v.fact(_("Points to double the odds"), f.get("pdo"))
    v.fact(_("Rows scored"), f.get("rows"), "int")
    v.fact(_("Lowest points"), f.get("min_points"))
    v.fact(_("Average points"), f.get("mean_points"))
    v.fact(_("Highest points"), f.get("max_points"))
    params = v.params()
    scale = scorecard_math.scaling(f.get("base_score", 600.0), f.get("base_odds", 50.0), f.get("pdo", 20.0),
                                   f.get("positive", "bad"))
    # The points of a row depend on its probability only; these bands make the scale concrete.
    probabilities = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]
    import numpy as np

    points = scorecard_math.points(np.asarray(probabilities), scale, min_points=params.get("min_points"),
                                   max_points=params.get("max_points"), decimals=params.get("decimals"))
    rows = [[p, float(x)] for p, x in zip(probabilities, points)]
    v.chart("points", "xy", _("Points by probability of an event"),
            description=_("The points a row gets for the model's probability of an event; higher points mean "
                          "lower risk when label 1 is the bad outcome."),
            x_label=_("Probability of an event"), y_label=_("Points"), series=[{"label": _("Points"), "data": rows}],
            options={"x_min": 0, "x_max": 1, "x_format": "pct"},
            table={"columns": [_col("probability", _("Probability of an event"), "pct"), _col("points", _("Points"))],
                   "rows": rows})


def present_generic(v: _View) -> None:
    """Any other component: its plain numbers and words, one level deep."""
    rows = []
    for key, value in sorted(v.final.items()):
        if isinstance(value, dict):
            rows += [[f"{key}.{k}", x] for k, x in sorted(value.items()) if _scalar(x)]
        elif _scalar(value):
            rows.append([key, value])
    if rows:
        v.chart("metrics", "table", _("Figures"), table={
            "columns": [_col("name", _("Name"), "text"), _col("value", _("Value"), "auto")],
            "rows": [[k, x if isinstance(x, str) else _plain_number(x)] for k, x in rows]})


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (isinstance(value, float) and not math.isfinite(value))


def _plain_number(value: Any) -> Any:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return value


PRESENTERS: dict[str, Callable[[_View], None]] = {
    "psi": present_psi,
    "split": present_split,
    "preprocess": present_preprocess,
    "statistics": present_statistics,
    "hetero_binning": present_binning,
    "feature_selection": present_selection,
    "hetero_lr": present_lr,
    "hetero_lr_predict": present_predict,
    "hetero_secureboost": present_boost,
    "hetero_secureboost_predict": present_predict,
    "evaluation": present_evaluation,
    "scorecard": present_scorecard,
}

COMPONENT_TITLES: dict[str, Callable[[], str]] = {
    "psi": lambda: _("Overlap of the two tables (PSI)"),
    "split": lambda: _("Training and validation split"),
    "preprocess": lambda: _("Data preparation"),
    "statistics": lambda: _("Statistics"),
    "hetero_binning": lambda: _("Binning: WOE and IV"),
    "feature_selection": lambda: _("Feature selection"),
    "hetero_lr": lambda: _("Logistic regression training"),
    "hetero_lr_predict": lambda: _("Scoring with the logistic regression"),
    "hetero_secureboost": lambda: _("SecureBoost training"),
    "hetero_secureboost_predict": lambda: _("Scoring with SecureBoost"),
    "evaluation": lambda: _("Evaluation"),
    "scorecard": lambda: _("Scorecard"),
}
