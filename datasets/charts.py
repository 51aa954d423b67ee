"""Small server-rendered SVG charts: no JavaScript library, works offline."""

from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _


def histogram_svg(histogram: dict, width: int = 160, height: int = 40) -> str:
    counts = histogram.get("counts") or []
    edges = histogram.get("edges") or []
    if not counts or max(counts) == 0:
        return ""
    top = max(counts)
    bar = width / len(counts)
    bars = []
    for i, count in enumerate(counts):
        h = 0 if count == 0 else max(1.0, height * count / top)
        low = edges[i] if i < len(edges) else ""
        high = edges[i + 1] if i + 1 < len(edges) else ""
        bars.append((f"{i * bar + 0.5:.1f}", f"{height - h:.1f}", f"{max(bar - 1, 1):.1f}", f"{h:.1f}", f"{low:.4g} – {high:.4g}: {count}" if low != "" and high != "" else str(count)))
    body = format_html_join("", '<rect x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>', bars)
    return format_html(
        '<svg class="hist" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg>',
        width, height, width, height, _("Histogram of the column's values"), body,
    )
