"""The admin's audit pages: a filtered list and a CSV export of the same filter."""

import csv
from datetime import datetime, time

from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header

from fedweb.accounts.views import site_admin_required
from datasets.ingest import neutralise

from .models import AuditAction, AuditEvent, AuditOutcome
from .services import record

EXPORT_COLUMNS = [
    "seq", "event_id", "created_at", "actor_name", "action", "outcome",
    "object_type", "object_id", "object_repr", "ip_address", "details", "hash",
]


def _parse_day(value: str, end: bool):
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except (TypeError, ValueError):
        return None
    return timezone.make_aware(datetime.combine(day, time.max if end else time.min))


def filtered_events(params):
    qs = AuditEvent.objects.all()
    if params.get("action"):
        qs = qs.filter(action=params["action"])
    if params.get("outcome"):
        qs = qs.filter(outcome=params["outcome"])
    if params.get("actor"):
        qs = qs.filter(actor_name__icontains=params["actor"])
    if params.get("object"):
        qs = qs.filter(object_id=params["object"]) | qs.filter(object_repr__icontains=params["object"])
    start, end = _parse_day(params.get("from"), False), _parse_day(params.get("to"), True)
    if start:
        qs = qs.filter(created_at__gte=start)
    if end:
        qs = qs.filter(created_at__lte=end)
    return qs.order_by("-seq")


@site_admin_required
def audit_list(request):
    page = Paginator(filtered_events(request.GET), 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/list.html",
        {
            "page": page,
            "actions": AuditAction.choices,
            "outcomes": AuditOutcome.choices,
            "f": request.GET,
            "query": query.urlencode(),
        },
    )


class _Echo:
    def write(self, value):
        return value


@site_admin_required
def audit_export(request):
    events = filtered_events(request.GET)
    record(AuditAction.AUDIT_EXPORT, request=request, details={"filter": {k: v for k, v in request.GET.items()}})
    writer = csv.writer(_Echo())

    def rows():
        yield "\ufeff"  # so spreadsheet programs read the file as UTF-8
        yield writer.writerow(EXPORT_COLUMNS)
        for event in events.iterator(chunk_size=2000):
            values = [getattr(event, c) for c in EXPORT_COLUMNS]
            yield writer.writerow([neutralise("" if v is None else str(v)) for v in values])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=f"audit-{stamp}.csv")
    return response
