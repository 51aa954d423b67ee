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
def thousands(value):
    """100000 → "100,000" in every language (Django's Chinese number format groups by nothing),
    as the datasets' messages write counts; None and non-numbers stay as they are."""
    if value is None or value == "" or isinstance(value, bool):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return f"{int(number):,}" if number.is_integer() else f"{number:,}"


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


@register.filter
def column_words(column):
    """A partner column's role and type in words: "feature, number"."""
    from django.utils.translation import gettext as _

    from datasets.models import ColumnType

    roles = {"id": _("id"), "label": _("label"), "feature": _("feature"), "ignored": _("ignored")}
    types = {**dict(ColumnType.choices), "category": ColumnType.CATEGORICAL.label}
    role, kind = column.get("role") or "", column.get("type") or ""
    words = [str(roles.get(role, role))] + ([str(types.get(kind, kind))] if kind else [])
    return ", ".join(w for w in words if w)


@register.filter
def fit_width(text, em=16):
    """Cut ``text`` to about ``em`` widths of a capital letter, a Chinese character counting
    double a Latin one (the pipeline graph's boxes have a fixed width); "…" marks a cut."""
    import unicodedata

    text, used, out = str(text), 0.0, []
    for char in text:
        used += 1.0 if unicodedata.east_asian_width(char) in ("W", "F") else 0.55
        if used > float(em):
            return "".join(out).rstrip() + "…"
        out.append(char)
    return text
