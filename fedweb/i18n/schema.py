"""One walk over a component's description, shared by the catalog and the translation.

The catalog (``engine_text.py``) is generated from :func:`texts`, and the pages
translate through :func:`translate_schema`; both go through :func:`_walk`, so a text
the pages show is always one the catalog lists.

Translated: the ``title`` and ``description`` of every schema node, and each string
value of an ``enum`` as a label (in ``x-enum-labels``; the values themselves are what
a job spec holds, so they never change). An enum label's context is the parameter's
name, because the same word means different things in different parameters ("none"
scaling is not "none" filling).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

ENUM_LABELS = "x-enum-labels"
ROLE_CONTEXT = "engine role"
PORT_TYPE_CONTEXT = "engine port type"

# Schema keys whose values are data, not schema: nothing under them is shown as text.
_DATA_KEYS = frozenset({"default", "examples", "const", "enum", "required", "pattern", "format", "type", ENUM_LABELS})
# Schema keys whose values map names to sub-schemas (the names themselves are identifiers).
_MAP_KEYS = frozenset({"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"})


def enum_context(parameter: str | None) -> str:
    return f"parameter value: {parameter or '-'}"


Translate = Callable[[str | None, str], str]  # (context, text) -> text


def _walk(node: Any, translate: Translate, parameter: str | None) -> Any:
    """A copy of ``node`` with every shown text passed through ``translate``."""
    if isinstance(node, list):
        return [_walk(item, translate, parameter) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "description") and isinstance(value, str):
            out[key] = translate(None, value) if value else value
        elif key in _MAP_KEYS and isinstance(value, dict):
            out[key] = {name: _walk(sub, translate, name) for name, sub in value.items()}
        elif key in _DATA_KEYS:
            out[key] = copy.deepcopy(value)
        else:
            out[key] = _walk(value, translate, parameter)
    values = node.get("enum")
    if isinstance(values, list) and any(isinstance(v, str) for v in values):
        out[ENUM_LABELS] = {v: translate(enum_context(parameter), v) for v in values if isinstance(v, str)}
    return out


def walk_schema(schema: dict, translate: Translate) -> dict:
    return _walk(schema, translate, None)


def walk_component(description: dict, translate: Translate) -> dict:
    """A copy of one ``Registry.describe()`` entry with its shown texts translated."""
    out = copy.deepcopy(description)
    if out.get("description"):
        out["description"] = translate(None, out["description"])
    for role in out.get("roles", []):
        role["label"] = translate(ROLE_CONTEXT, role["name"])
        if role.get("description"):
            role["description"] = translate(None, role["description"])
    for port in out.get("inputs", []) + out.get("outputs", []):
        port["type_label"] = translate(PORT_TYPE_CONTEXT, port["type"])
        if port.get("description"):
            port["description"] = translate(None, port["description"])
    if isinstance(out.get("parameters"), dict):
        out["parameters"] = walk_schema(out["parameters"], translate)
    return out


def texts(descriptions: list[dict], roles: dict[str, str], port_types: dict[str, str]) -> Iterator[tuple[str | None, str]]:
    """Every (context, text) the pages may show for these components, first occurrence order, no repeats."""
    seen: set[tuple[str | None, str]] = set()
    found: list[tuple[str | None, str]] = []

    def collect(context: str | None, text: str) -> str:
        if (context, text) not in seen:
            seen.add((context, text))
            found.append((context, text))
        return text

    for name, text in roles.items():
        collect(ROLE_CONTEXT, name)
        collect(None, text)
    for name, text in port_types.items():
        collect(PORT_TYPE_CONTEXT, name)
        collect(None, text)
    for description in descriptions:
        walk_component(description, collect)
    yield from found
