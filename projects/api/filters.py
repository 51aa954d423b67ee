"""Filters of the partner and project lists (``GET /api/partners/``, ``/api/projects/``);
see ``fedweb/api/filtering.py``."""

from __future__ import annotations

import django_filters

from fedweb.api.filtering import created_filters

from ..models import Partner, Project, ProjectStatus


class PartnerFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains this text (any case).")
    party_id = django_filters.CharFilter(label="The partner's party id.")
    # A partner has no lifecycle beyond being switched on or off; "status" keeps the
    # parameter the same on every list.
    status = django_filters.ChoiceFilter(
        choices=[("active", "in use"), ("inactive", "switched off")], method="filter_status",
        label="Whether this site works with the partner.",
    )
    created_after, created_before = created_filters()

    class Meta:
        model = Partner
        fields = ["name", "party_id", "status", "created_after", "created_before"]

    def filter_status(self, queryset, name, value):
        return queryset.filter(is_active=value == "active")


class ProjectFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains this text (any case).")
    status = django_filters.ChoiceFilter(choices=ProjectStatus.choices, label="The project's status.")
    partner = django_filters.CharFilter(field_name="partner__party_id", label="The partner's party id.")
    created_after, created_before = created_filters()

    class Meta:
        model = Project
        fields = ["name", "status", "partner", "created_after", "created_before"]
