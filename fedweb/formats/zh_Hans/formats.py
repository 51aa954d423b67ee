"""Simplified Chinese: ISO-like dates and times.

Django's zh_Hans formats write 2026年12月3日; the business and data software our
users work in (and every hard-coded date on these pages) writes 2026-12-03 08:15, so
the default formats say the same and a page never mixes the two styles.
"""

DATE_FORMAT = "Y-m-d"  # 2026-12-03
TIME_FORMAT = "H:i"  # 08:15
DATETIME_FORMAT = "Y-m-d H:i"  # 2026-12-03 08:15
YEAR_MONTH_FORMAT = "Y年n月"  # 2026年12月
MONTH_DAY_FORMAT = "n月j日"  # 12月3日
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
FIRST_DAY_OF_WEEK = 1  # Monday

# What forms accept: the ISO-like form first (it is what the fields show), then the others people type.
DATE_INPUT_FORMATS = [
    "%Y-%m-%d",  # 2026-12-03
    "%Y/%m/%d",  # 2026/12/03
    "%Y年%m月%d日",  # 2026年12月03日 (strptime reads 12月3日 too)
]
TIME_INPUT_FORMATS = [
    "%H:%M",
    "%H:%M:%S",
    "%H:%M:%S.%f",
]
DATETIME_INPUT_FORMATS = [
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y-%m-%dT%H:%M",  # what <input type="datetime-local"> sends
    "%Y-%m-%dT%H:%M:%S",
]

DECIMAL_SEPARATOR = "."
# Only used where thousands are grouped at all (USE_THOUSAND_SEPARATOR is off):
# groups of three with commas, as in Chinese financial reports.
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
