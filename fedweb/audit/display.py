"""An audit event's details in words: labelled key/value pairs instead of the stored JSON.

The details are whatever the action recorded (who was granted what, a role before and after, the
file uploaded...). Known keys get a translated label and their values a readable form (a role's
name, yes/no, "never"); ids and hashes stay verbatim in code type; a key no label covers shows as
it is stored, so nothing recorded is ever hidden.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from fedweb.accounts.models import Role

from .models import AuditAction, AuditOutcome

LABELS = {
    "user": gettext_lazy("User"),
    "role": gettext_lazy("Role"),
    "email": gettext_lazy("E-mail"),
    "name": gettext_lazy("Name"),
    "first_name": gettext_lazy("First name"),
    "last_name": gettext_lazy("Last name"),
    "language": gettext_lazy("Language"),
    "is_active": gettext_lazy("Active"),
    "tokens_revoked": gettext_lazy("API tokens revoked"),
    "sessions_ended": gettext_lazy("Sessions ended"),
    "grant": gettext_lazy("Grant"),
    "expires_at": gettext_lazy("Until"),
    "days": gettext_lazy("Valid for (days)"),
    "file": gettext_lazy("File"),
    "bytes": gettext_lazy("Size (bytes)"),
    "sha256": gettext_lazy("SHA-256"),
    "rows": gettext_lazy("Rows"),
    "row_count": gettext_lazy("Rows"),
    "line": gettext_lazy("Line"),
    "column": gettext_lazy("Column"),
    "columns": gettext_lazy("Columns"),
    "type": gettext_lazy("Type"),
    "code": gettext_lazy("Reason code"),
    "id_column": gettext_lazy("Id column"),
    "label_column": gettext_lazy("Label column"),
    "features": gettext_lazy("Features"),
    "description": gettext_lazy("Description"),
    "dataset": gettext_lazy("Dataset"),
    "dataset_name": gettext_lazy("Dataset"),
    "table": gettext_lazy("Table"),
    "table_id": gettext_lazy("Table"),
    "partner_may_receive_intersection": gettext_lazy("The partner may receive the intersection"),
    "policy": gettext_lazy("PSI policy"),
    "partner": gettext_lazy("Partner"),
    "party_id": gettext_lazy("Site id"),
    "address": gettext_lazy("Proxy address"),
    "pins": gettext_lazy("Pinned certificates"),
    "created": gettext_lazy("New"),
    "received": gettext_lazy("Received from the partner"),
    "purpose": gettext_lazy("Purpose"),
    "label_holder": gettext_lazy("Label holder"),
    "invited_by": gettext_lazy("Invited by"),
    "comment": gettext_lazy("Comment"),
    "version": gettext_lazy("Version"),
    "job": gettext_lazy("Job"),
    "node": gettext_lazy("Step"),
    "port": gettext_lazy("Output"),
    "attempt": gettext_lazy("Attempt"),
    "reason": gettext_lazy("Reason"),
    "overlap": gettext_lazy("Overlap"),
    "sweep": gettext_lazy("Comparison"),
    "axes": gettext_lazy("Parameters compared"),
    "jobs": gettext_lazy("Jobs"),
    "artifact": gettext_lazy("Output id"),
    "model": gettext_lazy("Model"),
    "number": gettext_lazy("Version"),
    "published": gettext_lazy("Published"),
    "sample_rows": gettext_lazy("Sample rows"),
    "fingerprint": gettext_lazy("Certificate fingerprint"),
    "signer": gettext_lazy("Signed by"),
    "trusted_as": gettext_lazy("Trusted as"),
    "session": gettext_lazy("Session"),
    "rpc": gettext_lazy("Request"),
    "status": gettext_lazy("Status"),
    "kind": gettext_lazy("Kind"),
    "filter": gettext_lazy("Filter"),
    "action": gettext_lazy("What"),
    "outcome": gettext_lazy("Outcome"),
    "actor": gettext_lazy("Who"),
    "object": gettext_lazy("Object"),
    "from": gettext_lazy("From"),
    "to": gettext_lazy("To"),
    "page": gettext_lazy("Page"),
    "only_own": gettext_lazy("Only the exporter's own actions"),
}

# A table's columns as a project announces them: their role and kind in words.
COLUMN_WORDS = {
    "id": gettext_lazy("id"),
    "label": gettext_lazy("label"),
    "feature": gettext_lazy("feature"),
    "ignored": gettext_lazy("ignored"),
    "numeric": gettext_lazy("Number"),
    "categorical": gettext_lazy("Category"),
    "category": gettext_lazy("Category"),
    "text": gettext_lazy("Text"),
}

# Values that are identifiers or digests: shown verbatim, never translated.
CODE_KEYS = {"sha256", "fingerprint", "pins", "job", "model", "table_id", "table", "dataset", "session", "sweep",
             "artifact", "code", "rpc", "kind", "node", "port", "party_id", "address", "status"}

# Nested values longer than this are folded, so one event does not fill the screen.
FOLD_AFTER = 4


@dataclass
class Value:
    text: str
    code: bool = False


@dataclass
class Item:
    key: str
    label: str | None  # None: the key has no label and is shown as stored
    value: Value | None = None  # a single value
    values: list[Value] = field(default_factory=list)  # a list of plain values
    before: Value | None = None  # a change: before -> after
    after: Value | None = None
    children: list[list[Item]] = field(default_factory=list)  # nested objects (one list of items each)

    @property
    def is_change(self) -> bool:
        return self.after is not None

    @property
    def size(self) -> int:
        """How many entries a folded item holds (objects in a list, or one object's fields)."""
        return len(self.children) if len(self.children) > 1 else len(self.children[0]) if self.children else 0

    @property
    def folded(self) -> bool:
        return bool(self.children) and (len(self.children) > 1 or len(self.children[0]) > FOLD_AFTER)


def _label(key: str) -> str | None:
    label = LABELS.get(key)
    return str(label) if label is not None else None


def _value(key: str, value) -> Value:
    if value is None or value == "":
        return Value(_("never") if key == "expires_at" else "—")
    if isinstance(value, bool):
        return Value(_("yes") if value else _("no"))
    if key == "role" and value in Role.values:
        return Value(str(Role(value).label))
    if key == "language":
        return Value(str(dict(settings.LANGUAGES).get(value, value)))
    if key == "action" and value in AuditAction.values:
        return Value(str(AuditAction(value).label))
    if key == "outcome" and value in AuditOutcome.values:
        return Value(str(AuditOutcome(value).label))
    if key == "grant" and isinstance(value, int):
        return Value(f"#{value}")
    if isinstance(value, (dict, list)):  # inside a list: kept compact
        return Value(json.dumps(value, ensure_ascii=False, sort_keys=True), code=True)
    if isinstance(value, int) and key not in CODE_KEYS:  # counts and sizes read as 100,000
        return Value(f"{value:,}")
    return Value(str(value), code=key in CODE_KEYS)


def _column(column: dict) -> Value:
    """``{"name": "age", "role": "feature", "type": "numeric"}`` as "age (feature, Number)"."""
    words = [str(COLUMN_WORDS.get(column.get(k), column.get(k))) for k in ("role", "type") if column.get(k)]
    return Value(f"{column.get('name', '')} ({', '.join(words)})" if words else str(column.get("name", "")))


def _item(key: str, value) -> Item:
    item = Item(key=key, label=_label(key))
    if key == "columns" and isinstance(value, list) and all(isinstance(v, dict) and "name" in v for v in value):
        item.values = [_column(v) for v in value] or [Value("—")]
    elif isinstance(value, dict):
        item.children = [describe(value)]
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        item.children = [describe(v) for v in value]
    elif isinstance(value, list):
        item.values = [_value(key, v) for v in value] or [Value("—")]
    else:
        item.value = _value(key, value)
    return item


def describe(details) -> list[Item]:
    """The items to show for one event's details, in a stable order."""
    if not isinstance(details, dict):
        return [Item(key="", label=None, value=_value("", details))] if details not in (None, "", {}) else []
    items = []
    before, after = details.get("before"), details.get("after")
    changes = isinstance(before, dict) and isinstance(after, dict)
    for key in details:
        if changes and key in ("before", "after"):
            continue
        items.append(_item(key, details[key]))
    if changes:
        # One line per field that changed: "Role: Analyst → Viewer".
        for key in list(dict.fromkeys([*before, *after])):
            items.append(Item(key=key, label=_label(key), before=_value(key, before.get(key)),
                              after=_value(key, after.get(key))))
    return items
