"""The Audit page: a filtered list with each event's details in words, and a CSV export of the same filter.

Site admins read the whole trail; analysts and viewers read the events where they are the actor.
"""

import csv

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header

from datasets.ingest import neutralise

from .display import describe
from .models import AuditAction, AuditOutcome
from .services import EXPORT_COLUMNS, export_values, record, sees_everything, visible_events


@login_required
def audit_list(request):
    page = Paginator(visible_events(request.user, request.GET), 50).get_page(request.GET.get("page"))
    rows = [(event, describe(event.details)) for event in page]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/list.html",
        {
            "page": page,
            "rows": rows,
            "everything": sees_everything(request.user),
            "actions": AuditAction.choices,
            "outcomes": AuditOutcome.choices,
            "f": request.GET,
            "query": query.urlencode(),
        },
    )


class _Echo:
    def write(self, value):
        return value


@login_required
def audit_export(request):
    events = visible_events(request.user, request.GET)
    details = {"filter": {k: v for k, v in request.GET.items()}}
    if not sees_everything(request.user):
        details["only_own"] = True
    record(AuditAction.AUDIT_EXPORT, request=request, details=details)
    writer = csv.writer(_Echo())

    def rows():
        yield "\ufeff"  # so spreadsheet programs read the file as UTF-8
        yield writer.writerow(EXPORT_COLUMNS)
        for event in events.iterator(chunk_size=2000):
            # A cell a spreadsheet would run as a formula (=, +, -, @) is written as text.
            yield writer.writerow([neutralise(value) for value in export_values(event)])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=f"audit-{stamp}.csv")
    return response
