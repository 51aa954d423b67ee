"""Small display helpers for the site's templates."""

from django import template

register = template.Library()


@register.filter
def percent(value, digits=1):
    """0.0213 → "2.1%"; None stays empty."""
    if value is None or value == "":
        return ""
    try:
        number = float(value) * 100
    except (TypeError, ValueError):
        return ""
    text = f"{number:.{int(digits)}f}".rstrip("0").rstrip(".")
    return f"{text}%"


@register.filter
def column_use(column):
    """The single "use as" choice of a column: id, label, numeric, categorical or ignored."""
    role = column.get("role")
    if role in ("id", "label", "ignored"):
        return role
    return column.get("type") or "ignored"
