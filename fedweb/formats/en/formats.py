"""English: the same ISO-like dates and times as the hard-coded ones on the pages (2026-12-03 08:15),
instead of Django's US defaults (12/03/2026 8:15 a.m.), which read the wrong way round to most of
the world."""

DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
FIRST_DAY_OF_WEEK = 1  # Monday
