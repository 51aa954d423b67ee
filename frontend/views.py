"""The home page."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from datasets.services import count_datasets

from . import dashboard


@login_required
def home(request):
    return render(request, "frontend/home.html", {
        "board": dashboard.for_user(request.user), "dataset_count": count_datasets(request.user),
    })
