"""Filters of the job and model lists (``GET /api/jobs/``, ``/api/models/``); see
``fedweb/api/filtering.py`` for how every list filters, searches and orders."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from fedweb.api.filtering import created_filters

from ..models import Job, JobStatus, Model, ModelStatus

# A model's status is worked out from its consents and archiving (``Model.status``); the same
# conditions as queries, so that ``status=`` answers what the pages show.
_MODEL_STATUS = {
    ModelStatus.ARCHIVED: Q(archived_at__isnull=False),
    ModelStatus.PUBLISHED: Q(archived_at__isnull=True, consent_here_at__isnull=False, consent_partner_at__isnull=False),
    ModelStatus.REQUESTED: Q(archived_at__isnull=True, consent_here_at__isnull=False, consent_partner_at__isnull=True),
    ModelStatus.ASKED: Q(archived_at__isnull=True, consent_here_at__isnull=True, consent_partner_at__isnull=False),
    ModelStatus.DRAFT: Q(archived_at__isnull=True, consent_here_at__isnull=True, consent_partner_at__isnull=True),
}


class JobFilter(django_filters.FilterSet):
    project = django_filters.UUIDFilter(field_name="project_id", label="The project's id.")
    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains this text (any case).")
    status = django_filters.ChoiceFilter(choices=JobStatus.choices, label="The job's status.")
    created_after, created_before = created_filters()

    class Meta:
        model = Job
        fields = ["project", "name", "status", "created_after", "created_before"]


class ModelFilter(django_filters.FilterSet):
    project = django_filters.UUIDFilter(field_name="project_id", label="The project's id.")
    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains this text (any case).")
    status = django_filters.ChoiceFilter(choices=ModelStatus.choices, method="filter_status",
                                         label="Where the version is in its publication.")
    component = django_filters.CharFilter(label="The component that trained it (hetero_lr, hetero_secureboost).")
    created_after, created_before = created_filters()

    class Meta:
        model = Model
        fields = ["project", "name", "status", "component", "created_after", "created_before"]

    def filter_status(self, queryset, name, value):
        return queryset.filter(_MODEL_STATUS[value])
