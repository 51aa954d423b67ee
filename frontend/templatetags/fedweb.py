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


@register.filter
def duration(seconds):
    """A run time in the user's language: "45 s", "3 min", "1 h 05 min"; empty when unknown."""
    from jobs.listing import duration_words

    try:
        return duration_words(None if seconds in (None, "") else float(seconds))
    except (TypeError, ValueError):
        return ""
