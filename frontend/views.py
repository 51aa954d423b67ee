"""Shell pages: home and the sections that later work fills in."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from datasets.services import visible_datasets

from . import dashboard


@login_required
def home(request):
    return render(request, "frontend/home.html", {
        "board": dashboard.for_user(request.user), "dataset_count": visible_datasets(request.user).count(),
    })


def placeholder(title, coming):
    @login_required
    def view(request):
        return render(request, "frontend/placeholder.html", {"title": title, "coming": coming})

    return view


models = placeholder(
    _("Models"),
    _("Trained models will appear here, to compare, publish, and use for batch or online scoring."),
)
