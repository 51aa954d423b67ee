"""One job in the browser: the new-job form, the job page, its actions, rerun and sweep. Thin: each view
parses a form and calls one service."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from .. import presenters
from ..services import visible_jobs


@login_required
def job_detail(request, pk):
    job = get_object_or_404(visible_jobs(request.user).select_related("project"), pk=pk)
    return render(request, "jobs/detail.html", {"job": job, "results": presenters.job_results(job, request.user)})


@login_required
def node_log(request, pk, node):
    raise NotImplementedError


@login_required
def node_download(request, pk, node):
    raise NotImplementedError
