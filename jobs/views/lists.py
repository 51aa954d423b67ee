"""Job lists: across projects (with filters) and per project."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from ..services import visible_jobs


@login_required
def job_list(request):
    return render(request, "jobs/list.html", {"jobs": visible_jobs(request.user).select_related("project")[:100]})
