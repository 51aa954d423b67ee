"""Filters of the dataset list (``GET /api/datasets/``); see ``fedweb/api/filtering.py``."""

from __future__ import annotations

import json

import django_filters
from django.db import NotSupportedError
from django.db.models import BooleanField, F, Func, Value

from fedweb.api.filtering import created_filters

from ..models import Dataset, DatasetStatus


class HasElement(Func):
    """A JSON list column holds ``value`` as one of its elements.

    Django's ``__contains`` on a JSONField is PostgreSQL's ``@>`` and does not exist on
    SQLite; text matching on the stored JSON would also find ``risk`` in ``high-risk``.
    """

    output_field = BooleanField()

    def __init__(self, column: str, value: str):
        super().__init__(F(column), Value(value))

    def _parts(self, compiler):
        column, value = self.get_source_expressions()
        sql, params = compiler.compile(column)
        return sql, list(params), value.value

    def as_sql(self, compiler, connection, **extra):
        raise NotSupportedError(f"HasElement is not implemented for {connection.vendor}")

    def as_postgresql(self, compiler, connection, **extra):
        sql, params, value = self._parts(compiler)
        return f"({sql} @> %s::jsonb)", (*params, json.dumps([value]))

    def as_sqlite(self, compiler, connection, **extra):
        sql, params, value = self._parts(compiler)
        return (
            f"EXISTS (SELECT 1 FROM json_each({sql}) AS tag WHERE tag.type = 'text' AND tag.value = %s)",
            (*params, value),
        )


class DatasetFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains this text (any case).")
    owner = django_filters.CharFilter(field_name="owner__username", label="Owner's user name.")
    status = django_filters.ChoiceFilter(choices=DatasetStatus.choices, label="Validation status.")
    tag = django_filters.CharFilter(method="filter_tag", label="Has this tag (exact).")
    # A choice rather than a BooleanFilter, which reads any other word as "not given".
    current = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")], method="filter_current",
        label="true: only each dataset's current version (its newest ready one, else its newest), as the Datasets "
              "page lists them; false: only the other versions.",
    )
    created_after, created_before = created_filters()

    class Meta:
        model = Dataset
        fields = ["name", "owner", "status", "tag", "current", "created_after", "created_before"]

    def filter_current(self, queryset, name, value):
        current = Dataset.objects.current().values("pk")
        return queryset.filter(pk__in=current) if value == "true" else queryset.exclude(pk__in=current)

    def filter_tag(self, queryset, name, value):
        return queryset.filter(HasElement("tags", value.strip()))
