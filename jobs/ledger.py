"""Reconciliation of online scoring between the two organisations ("有帐可查").

Each site logs every scoring request it saw (``ScoringRequest``: request id, time, model
version, ids asked and scored, outcome). Reconciling one model's day fetches the
partner's log of that day through its proxy (``Ledger`` RPC, in pages) and matches both
by request id:

* **matched** — both sites logged it and agree it was scored;
* **mismatched** — both logged it but disagree (we timed out while they answered, they
  refused, the counts of scored ids differ);
* **only here** — the partner never saw it (it was down, or the request never left);
* **only there** — the partner answered a request this site has no record of.

Days are calendar days in the site's time zone (``TIME_ZONE``); both sites should use the
same one, which the page says.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import ScoringOutcome, ScoringRequest

PAGE = 2000
MAX_PAGES = 500  # a million requests a day per model
FIELDS = ("request_id", "at", "model_number", "ids", "scored", "outcome", "detail", "sent")
ANSWERED = {ScoringOutcome.SCORED, ScoringOutcome.PARTIAL, ScoringOutcome.UNKNOWN_IDS}


class LedgerRefused(ValueError):
    pass


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    return start, start + dt.timedelta(days=1)


def entries(project, model_id, day: dt.date):
    start, end = day_bounds(day)
    return ScoringRequest.objects.filter(project=project, model_id=model_id, at__gte=start, at__lt=end)


def _row(entry: ScoringRequest) -> dict:
    return {"request_id": str(entry.request_id), "at": entry.at.isoformat(), "model_number": entry.model_number,
            "ids": entry.ids, "scored": entry.scored, "outcome": entry.outcome, "detail": entry.detail,
            "sent": entry.asked_partner}


# --- The partner asks for our log (runs in our proxy) -------------------------------------------

def ledger_page(project, body: dict) -> dict:
    """One page of this site's log for a model and a day, ordered by request id."""
    try:
        model_id = uuid.UUID(str(body.get("model_id")))
        day = dt.date.fromisoformat(str(body.get("day")))
        after = str(body.get("after") or "")
        if after:
            after = str(uuid.UUID(after))
    except ValueError:
        raise LedgerRefused("the model id, day or page marker is malformed") from None
    rows = entries(project, model_id, day).order_by("request_id")
    if after:
        rows = rows.filter(request_id__gt=after)
    page = [_row(e) for e in rows[:PAGE]]
    return {"entries": page, "more": len(page) == PAGE, "time_zone": settings.TIME_ZONE}


def partner_entries(project, model_id, day: dt.date) -> tuple[list[dict], str]:
    """The partner's whole log of the day for the model (paged), and its time zone."""
    from .serving import call_partner

    out, after, zone = [], "", ""
    for _page in range(MAX_PAGES):
        answer = call_partner(project, "Ledger", "ledger",
                              {"model_id": str(model_id), "day": day.isoformat(), "after": after}, timeout=30)
        page = answer.get("entries") if isinstance(answer, dict) else None
        if not isinstance(page, list):
            break
        out.extend(e for e in page if isinstance(e, dict) and isinstance(e.get("request_id"), str))
        zone = str(answer.get("time_zone") or "")[:64]
        if not answer.get("more") or not page:
            break
        after = out[-1]["request_id"]
    return out, zone


# --- Matching ------------------------------------------------------------------------------

MATCHED, MISMATCH, ONLY_HERE, ONLY_THERE = "matched", "mismatch", "only_here", "only_there"


@dataclass
class Reconciliation:
    """One model's day at both sites: a line per request id, with both sites' records."""

    day: dt.date
    model_id: str
    ours: int = 0
    theirs: int = 0
    lines: list[dict] = field(default_factory=list)
    partner_time_zone: str = ""
    partner_error: str = ""

    def _with(self, status: str) -> list[dict]:
        return [line for line in self.lines if line["status"] == status]

    @property
    def matched(self) -> int:
        return len(self._with(MATCHED))

    @property
    def problems(self) -> list[dict]:
        return [line for line in self.lines if line["status"] != MATCHED]

    @property
    def balanced(self) -> bool:
        return not self.problems and not self.partner_error


def agree(here: dict, there: dict) -> bool:
    """Both logs tell the same story of one request."""
    if here["outcome"] == ScoringOutcome.PARTNER_REFUSED:
        return there["outcome"] == ScoringOutcome.REFUSED
    if here["outcome"] in ANSWERED:
        # The partner answered for the ids we sent it; we may have lacked some of its ids ourselves.
        return there["outcome"] in ANSWERED and there["scored"] >= here["scored"]
    return here["outcome"] == there["outcome"] and here["scored"] == there["scored"]


def _why(here: dict, there: dict) -> str:
    if here["outcome"] in (ScoringOutcome.TIMEOUT, ScoringOutcome.UNREACHABLE) and there["outcome"] in ANSWERED:
        return _("this site gave up waiting; the partner answered")
    if here["outcome"] != there["outcome"]:
        return _("the two sites logged different outcomes")
    return _("the number of scored ids differs")


def _line(status: str, why: str, here: dict | None, there: dict | None) -> dict:
    first = here or there
    return {"request_id": first["request_id"], "at": first.get("at"), "model_number": first.get("model_number"),
            "ids": first.get("ids"), "our_outcome": (here or {}).get("outcome", ""), "our_scored": (here or {}).get("scored"),
            "partner_outcome": (there or {}).get("outcome", ""), "partner_scored": (there or {}).get("scored"),
            "detail": (here or {}).get("detail") or (there or {}).get("detail") or "", "status": status, "why": why}


def reconcile(project, model_id, day: dt.date, *, theirs: list[dict] | None = None) -> Reconciliation:
    """Match this site's log of the day with the partner's (fetched unless given)."""
    from fedweb.api.errors import ServiceError

    result = Reconciliation(day=day, model_id=str(model_id))
    ours = {str(e.request_id): _row(e) for e in entries(project, model_id, day)}
    if theirs is None:
        try:
            theirs, result.partner_time_zone = partner_entries(project, model_id, day)
        except ServiceError as exc:
            theirs, result.partner_error = [], exc.message
    there = {e["request_id"]: e for e in theirs}
    result.ours, result.theirs = len(ours), len(there)
    for request_id, here in ours.items():
        other = there.get(request_id)
        if other is None:
            # Refused by the label holder before anything was sent: the partner cannot have seen it.
            result.lines.append(_line(ONLY_HERE, _("the partner never saw it"), here, None) if here["sent"]
                                else _line(MATCHED, "", here, None))
        elif agree(here, other):
            result.lines.append(_line(MATCHED, "", here, other))
        else:
            result.lines.append(_line(MISMATCH, _why(here, other), here, other))
    for request_id, other in there.items():
        if request_id not in ours:
            other = {k: other.get(k) for k in FIELDS}
            result.lines.append(_line(ONLY_THERE, _("this site has no record of it"), None, other) if other["sent"]
                                else _line(MATCHED, "", None, other))
    result.lines.sort(key=lambda line: str(line["at"]))
    return result


def days(project, *, since: dt.date | None = None, model_id=None) -> list[dict]:
    """Per day and model: the requests this site logged and how they ended (for the page's table)."""
    rows = ScoringRequest.objects.filter(project=project)
    if model_id is not None:
        rows = rows.filter(model_id=model_id)
    if since is not None:
        rows = rows.filter(at__gte=day_bounds(since)[0])
    from django.db.models.functions import TruncDate

    return list(
        rows.annotate(day=TruncDate("at", tzinfo=timezone.get_current_timezone()))
        .values("day", "model_id", "model_number")
        .annotate(requests=Count("id"), scored=Count("id", filter=Q(outcome__in=ANSWERED)))
        .order_by("-day", "model_id")
    )


def as_csv(result: Reconciliation, our_party: str, partner_party: str) -> str:
    """Every request of the day, one line each, with both sites' records (for both organisations' files)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["request_id", "time", "model_version", "ids", f"outcome_{our_party}", f"scored_{our_party}",
                     f"outcome_{partner_party}", f"scored_{partner_party}", "status", "why"])
    for line in result.lines:
        writer.writerow([line["request_id"], line["at"], line["model_number"], line["ids"], line["our_outcome"],
                         "" if line["our_scored"] is None else line["our_scored"], line["partner_outcome"],
                         "" if line["partner_scored"] is None else line["partner_scored"], line["status"], line["why"]])
    return buffer.getvalue()
