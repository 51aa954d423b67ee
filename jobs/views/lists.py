"""Job lists: across projects (with filters) and per project."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from .. import listing


@login_required
def job_list(request):
    form, jobs = listing.filtered_jobs(request.user, request.GET)
    page = Paginator(jobs, listing.PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "jobs/list.html", {
        "form": form, "page": page, "rows": listing.rows(page.object_list), "filtered": form.is_filtered,
    })
