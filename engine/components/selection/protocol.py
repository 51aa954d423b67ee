"""Feature selection: the guest decides IV-based selection, each party applies the rest to its own columns.

Message table (``G`` = guest, ``H`` = host)
===========================================

=====  =====  ========  ===================================================================
step   dir    message   content
=====  =====  ========  ===================================================================
1      G->H   ``keep``  protocol id and ``keep``: the opaque ids (``h0``, ``h1``...) of the
                        host features the guest keeps by IV, or ``None`` when no IV rule is
                        set (the host's features are then not judged by IV)
=====  =====  ========  ===================================================================

Everything else is local: each party computes the missing rates, variances and
correlations of its own columns (:mod:`engine.ml.selection`, :mod:`engine.ml.stats`)
and drops its own columns; the host maps the opaque ids back to its columns with its
half of the binning model (the ids are the ones ``hetero_binning`` gave the guest).

What each party learns
======================
* The host learns which of its binned features pass the guest's IV rules (one bit
  per feature; with ``iv_top_k`` also that the rest ranked lower). It learns
  nothing about the guest's features or labels.
* The guest learns nothing from the host: it does not even learn which host
  features the host's local rules (missing rate, variance, correlation) drop.
  Correlations between one party's columns and the other's are not computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.components.split.align import as_frame
from engine.errors import InvalidInput, ProtocolError
from engine.federation.context import Context
from engine.ml import model_io, stats
from engine.ml import selection as S
from engine.ml.columns import numeric_values, require_columns
from engine.ml.preprocessing import infer_numeric

__all__ = ["PROTOCOL", "guest", "host"]

PROTOCOL = "fedweb-feature-selection-v1"
VERSION = "1.0.0"


def _binning(inputs: dict[str, Any], role: str, needed: bool) -> dict[str, Any] | None:
    document = inputs.get("binning")
    if document is None:
        if needed:
            raise InvalidInput(
                "IV rules (iv_threshold, iv_top_k) need the 'binning' input: this party's hetero_binning model",
                input="binning")
        return None
    if not isinstance(document, dict):
        raise InvalidInput("input 'binning' must be a hetero_binning model", input="binning")
    return model_io.loads(model_io.dumps(document), component="hetero_binning", role=role)


def _candidates(frame: pd.DataFrame, params: Any, reserved: set[str]) -> list[str]:
    if params.columns is not None:
        require_columns(frame, params.columns)
        chosen = list(params.columns)
    else:
        chosen = list(frame.columns)
    protected = set(params.exclude_columns) | reserved
    return [c for c in chosen if c not in protected]


def _local_rules(frame: pd.DataFrame, candidates: list[str], params: Any, iv_of: dict[str, float],
                 dropped: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Missing rate, variance, then correlation, on this party's surviving columns."""
    details: dict[str, dict[str, Any]] = {}
    numeric = []
    for name in candidates:
        series = frame[name]
        is_numeric = infer_numeric(series)
        rate = stats.missing_rate(series)
        var = stats.variance(series) if is_numeric else None
        details[name] = {"missing_rate": rate, "variance": stats.json_float(var), "iv": iv_of.get(name)}
        if name in dropped:
            continue
        if params.max_missing_rate is not None and rate > params.max_missing_rate:
            dropped[name] = {"name": name, "reason": "missing_rate", "value": rate}
        elif params.min_variance is not None and is_numeric and (var is None or var <= params.min_variance):
            dropped[name] = {"name": name, "reason": "variance", "value": stats.json_float(var)}
        elif is_numeric:
            numeric.append(name)
    if params.max_correlation is not None and len(numeric) > 1:
        matrix = np.column_stack([numeric_values(frame[c]) for c in numeric])
        for drop in S.correlation_drops(matrix, numeric, params.max_correlation, [iv_of.get(c) for c in numeric]):
            dropped[drop["name"]] = {"name": drop["name"], "reason": "correlation", "value": drop["correlation"],
                                     "partner": drop["partner"]}
    return details


def _finish(ctx: Context, params: Any, frame: pd.DataFrame, candidates: list[str],
            dropped: dict[str, dict[str, Any]], details: dict[str, Any], label: str | None,
            extra: dict[str, Any]) -> dict[str, Any]:
    kept = [str(c) for c in frame.columns if c != params.id_column and c != label and c not in dropped]
    body = {"id_column": params.id_column, "label_column": label, "kept": kept,
            "dropped": [dropped[c] for c in candidates if c in dropped], **extra}
    document = model_io.build(component=S.COMPONENT, component_version=VERSION, role=ctx.role,
                              model_id=ctx.session_id, params=params.model_dump(mode="json"), body=body)
    metrics = {"candidates": len(candidates), "kept": len([c for c in candidates if c not in dropped]),
               "dropped": body["dropped"], "columns": details, **extra}
    return {"data": S.apply_model(document, frame), "model": document, "metrics": metrics}


def guest(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    frame = as_frame(inputs["data"])
    require_columns(frame, [params.id_column])
    label = params.label_column if params.label_column in frame.columns else None
    candidates = _candidates(frame, params, {params.id_column, *([label] if label else [])})
    iv_rules = params.iv_threshold is not None or params.iv_top_k is not None
    binning = _binning(inputs, "guest", iv_rules)
    features = binning["body"]["features"] if binning else []
    ivs = {("guest" if f["own"] else "host", f["name"]): float(f["iv"]) for f in features}
    iv_of = {name: iv for (party, name), iv in ivs.items() if party == "guest"}
    dropped: dict[str, dict[str, Any]] = {}
    host_keep = None
    if iv_rules:
        kept = S.select_by_iv(ivs, params.iv_threshold, params.iv_top_k)
        host_keep = [name for (party, name) in ivs if party == "host" and (party, name) in kept]
        for (party, name), iv in ivs.items():
            if party == "guest" and (party, name) not in kept and name in candidates:
                dropped[name] = {"name": name, "reason": "iv", "value": iv}
    ctx.peer.send("keep", {"protocol": PROTOCOL, "keep": host_keep})
    details = _local_rules(frame, candidates, params, iv_of, dropped)
    extra: dict[str, Any] = {}
    if host_keep is not None:
        extra["host_keep"] = host_keep
        extra["host_iv_dropped"] = [name for (party, name) in ivs if party == "host" and name not in host_keep]
    return _finish(ctx, params, frame, candidates, dropped, details, label, extra)


def host(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    frame = as_frame(inputs["data"])
    require_columns(frame, [params.id_column])
    candidates = _candidates(frame, params, {params.id_column})
    message = ctx.peer.recv("keep")
    if not isinstance(message, dict) or message.get("protocol") != PROTOCOL:
        raise ProtocolError(f"feature_selection: the guest does not run {PROTOCOL}")
    keep = message.get("keep")
    if keep is not None and not (isinstance(keep, list) and all(isinstance(k, str) for k in keep)):
        raise ProtocolError("feature_selection: the keep list must be a list of feature ids")
    binning = _binning(inputs, "host", keep is not None)
    features = binning["body"]["features"] if binning else []
    iv_of = {f["name"]: float(f["iv"]) for f in features if f.get("iv") is not None}
    dropped: dict[str, dict[str, Any]] = {}
    if keep is not None:
        by_id = {f["id"]: f["name"] for f in features}
        unknown = [k for k in keep if k not in by_id]
        if unknown:
            raise ProtocolError(f"feature_selection: the guest keeps {len(unknown)} feature id(s) this host's "
                                "binning model does not have; use the binning model of the same run")
        kept_names = {by_id[k] for k in keep}
        for feature in features:
            if feature["name"] not in kept_names and feature["name"] in candidates:
                dropped[feature["name"]] = {"name": feature["name"], "reason": "iv", "value": iv_of.get(feature["name"])}
    details = _local_rules(frame, candidates, params, iv_of, dropped)
    return _finish(ctx, params, frame, candidates, dropped, details, None, {})
