"""Search, filters and ordering for the API's lists: one way, the same on every list.

A list view inherits :class:`FilteredListMixin` and names a ``filterset_class`` (from its
app's ``api/filters.py``), ``search_fields`` and ``ordering_fields``. The backends narrow
the view's own ``get_queryset()`` — what the caller may see — so a filter can never show
more than the unfiltered list. A bad value is a 400 naming the parameter, never a value
silently ignored (which would answer a different question than the one asked).
"""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.filters import OrderingFilter, SearchFilter

from .errors import ServiceError

# ISO 8601 days only: whatever the site's language, 03/04/2026 means nothing here.
ISO_DATE = ["%Y-%m-%d"]


def bad_parameters(errors: dict) -> ServiceError:
    names = ", ".join(sorted(errors))
    return ServiceError(
        _("Bad value for %(names)s.") % {"names": names},
        code="invalid_filter",
        details={name: [str(m) for m in messages] for name, messages in errors.items()},
    )


class FilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise bad_parameters(filterset.errors)
        return filterset.qs


class DescribedSearchFilter(SearchFilter):
    def get_schema_operation_parameters(self, view):
        fields = ", ".join(f.lstrip("^=@$") for f in getattr(view, "search_fields", []))
        return [{**param, "description": f"Words that must each appear in one of: {fields} (any case)."}
                for param in super().get_schema_operation_parameters(view)]


class StrictOrderingFilter(OrderingFilter):
    """``ordering=`` refuses a field it does not offer, and breaks ties by id so that pages
    (limit/offset) neither repeat nor skip rows."""

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = {name for name, _label in self.get_valid_fields(queryset, view, {"request": request})}
        bad = [term for term in fields if term.removeprefix("-") not in valid]
        if bad:
            raise bad_parameters({self.ordering_param: [
                _("Cannot order by %(fields)s; choose from %(valid)s (a leading - reverses).")
                % {"fields": ", ".join(bad), "valid": ", ".join(sorted(valid))}
            ]})
        return fields

    def get_schema_operation_parameters(self, view):
        fields = ", ".join(getattr(view, "ordering_fields", []))
        description = f"Order by one or more of {fields}, comma-separated; a leading - reverses (-created_at)."
        return [{**param, "description": description} for param in super().get_schema_operation_parameters(view)]

    def filter_queryset(self, request, queryset, view):
        ordering = self.get_ordering(request, queryset, view)
        if ordering:
            return queryset.order_by(*ordering, "pk")
        return queryset


class FilteredListMixin:
    filter_backends = [FilterBackend, DescribedSearchFilter, StrictOrderingFilter]

    def filter_queryset(self, queryset):
        # Only the list is searched and filtered: a detail route or an action finds its
        # object by id, whatever else the query string says.
        if getattr(self, "action", None) != "list":
            return queryset
        return super().filter_queryset(queryset)


def created_filters() -> tuple[django_filters.DateFilter, django_filters.DateFilter]:
    """``created_after`` / ``created_before``: ISO days, both included, in the site's time zone."""
    return (
        django_filters.DateFilter(
            field_name="created_at", lookup_expr="date__gte", input_formats=ISO_DATE,
            label="Created on or after this day (YYYY-MM-DD).",
        ),
        django_filters.DateFilter(
            field_name="created_at", lookup_expr="date__lte", input_formats=ISO_DATE,
            label="Created on or before this day (YYYY-MM-DD).",
        ),
    )
