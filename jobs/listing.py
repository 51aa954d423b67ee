"""What a job looks like in a list (the job list, a project's jobs, the home page), and the job list's filters.

A list row says, in plain words, what kind of job it is, where it stands, who started it, how long it ran
and its one headline figure: the validation AUC and KS for a model, the overlap size for a PSI. The
figures come from this site's own tasks, so a row shows what this site computed, never a guess.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.utils.translation import ngettext

from projects.services import visible_projects

from .models import Job, JobStatus, Task, TaskStatus
from .services import visible_jobs
from .templates import TEMPLATES

PAGE_SIZE = 25

# Statuses a newer version of the job model may add before this module learns of them: a job in one
# still gets words and a colour instead of its raw code.
EXTRA_STATUS_WORDS = {
    "paused": gettext_lazy("Paused, waiting for a decision"),
}

# The colour family of each status, for the badge (see dashboard.css).
STATUS_TONES = {
    JobStatus.PENDING: "waiting", JobStatus.APPROVAL: "waiting", "paused": "waiting",
    JobStatus.RUNNING: "running", JobStatus.CANCELLING: "running",
    JobStatus.SUCCEEDED: "good",
    JobStatus.FAILED: "bad", JobStatus.REFUSED: "bad",
    JobStatus.CANCELLED: "neutral",
}

# Where an evaluation report may sit in the evaluation task's final figures: the report of the
# validation rows is under its input's name ("data" in the templates); older or hand-written specs
# may name it "validate", or give the report flat.
REPORT_KEYS = ("validate", "validation", "data", "test")


def status_words(status: str) -> str:
    return str(dict(JobStatus.choices).get(status) or EXTRA_STATUS_WORDS.get(status) or status)


def template_words(name: str) -> str:
    template = TEMPLATES.get(name)
    if template is not None:
        return str(template.title)
    return _("Custom job") if not name else name


def duration_words(seconds: float | None) -> str:
    """12 s, 4 min, 1 h 05 min, 2 d 3 h: coarse enough to read at a glance."""
    if seconds is None:
        return ""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return _("%(s)d s") % {"s": seconds}
    minutes = seconds // 60
    if minutes < 60:
        return _("%(m)d min") % {"m": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _("%(h)d h %(m)02d min") % {"h": hours, "m": minutes}
    days, hours = divmod(hours, 24)
    return _("%(d)d d %(h)d h") % {"d": days, "h": hours}


def job_seconds(job: Job, now: dt.datetime | None = None) -> float | None:
    """How long the job has run: from the partner's consent (nothing ran before) to its end, or until
    now while it runs. A job that never started has no duration."""
    start = job.accepted_at
    if start is None:
        return None
    end = job.finished_at or (now or timezone.now())
    return (end - start).total_seconds()


def _is_report(value) -> bool:
    return isinstance(value, dict) and ("auc" in value or "rmse" in value)


def evaluation_report(final, depth: int = 0) -> dict | None:
    """The validation report inside an evaluation task's final figures, flat or by input name."""
    if not isinstance(final, dict) or depth > 3:
        return None
    if _is_report(final):
        return final
    for key in REPORT_KEYS:
        if _is_report(final.get(key)):
            return final[key]
    for value in final.values():
        found = evaluation_report(value, depth + 1)
        if found is not None:
            return found
    return None


def _figure(value, digits: int = 3) -> str:
    # number_format cuts the digits off instead of rounding them: round first.
    try:
        return number_format(round(float(value), digits), decimal_pos=digits)
    except (TypeError, ValueError, OverflowError):
        return ""


def evaluation_words(final) -> str:
    report = evaluation_report(final)
    if report is None:
        return ""
    if "auc" in report:
        if report.get("ks") is None:
            return _("AUC %(auc)s") % {"auc": _figure(report["auc"])}
        return _("AUC %(auc)s · KS %(ks)s") % {"auc": _figure(report["auc"]), "ks": _figure(report["ks"])}
    if report.get("r2") is not None:
        return _("RMSE %(rmse)s · R² %(r2)s") % {"rmse": _figure(report["rmse"]), "r2": _figure(report["r2"])}
    return _("RMSE %(rmse)s") % {"rmse": _figure(report["rmse"])}


def overlap_words(final) -> str:
    if not isinstance(final, dict) or final.get("intersection_size") is None:
        return ""
    try:
        size = int(final["intersection_size"])
    except (TypeError, ValueError):
        return ""
    return ngettext("%(n)s row in common", "%(n)s rows in common", size) % {
        "n": number_format(size, force_grouping=True)}


def first_line(text: str) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


@dataclass
class JobRow:
    job: Job
    template: str
    status: str
    tone: str
    by_partner: bool
    started_by: str  # our user's name, or the partner's user's name when the partner started it
    duration: str
    headline: str
    error: str  # the first line of a failure's explanation


def evaluates(job: Job) -> bool:
    """Whether the job measures a model: its headline is then the evaluation's, never the overlap of its
    first step (which would read as the job's result while it is still training)."""
    if job.template in ("lr", "secureboost"):
        return True
    return any(node.get("component") == "evaluation" for node in (job.spec or {}).get("nodes", []) if isinstance(node, dict))


def _headlines(jobs: list[Job]) -> dict:
    """{job id: headline} from this site's evaluation task, or its PSI task when the job evaluates nothing."""
    tasks = (Task.objects.filter(job__in=[j.pk for j in jobs], site=Task.OURS, component__in=("evaluation", "psi"),
                                 status__in=TaskStatus.done())
             .only("job_id", "component", "metrics"))
    evaluations, overlaps = {}, {}
    for task in tasks:
        final = (task.metrics or {}).get("final")
        if task.component == "evaluation":
            evaluations[task.job_id] = evaluations.get(task.job_id) or evaluation_words(final)
        else:
            overlaps[task.job_id] = overlaps.get(task.job_id) or overlap_words(final)
    return {job.pk: evaluations.get(job.pk, "") if evaluates(job) else overlaps.get(job.pk, "") for job in jobs}


def rows(jobs) -> list[JobRow]:
    """One row per job, in the given order; two queries whatever the number of jobs (the jobs, their figures)."""
    jobs = list(jobs)
    headlines = _headlines(jobs) if jobs else {}
    now = timezone.now()
    out = []
    for job in jobs:
        ours = job.we_initiated
        out.append(JobRow(
            job=job,
            template=template_words(job.template),
            status=status_words(job.status),
            tone=STATUS_TONES.get(job.status, "neutral"),
            by_partner=not ours,
            started_by=(job.created_by.get_username() if ours and job.created_by_id else job.created_by_name),
            duration=duration_words(job_seconds(job, now)),
            headline=headlines.get(job.pk, ""),
            error=first_line(job.error) if job.status in (JobStatus.FAILED, JobStatus.REFUSED) else "",
        ))
    return out


# --- The job list's filters -------------------------------------------------------------------

class JobFilterForm(forms.Form):
    """The job list's filters, as a GET form: every field is optional and the empty form lists every job."""

    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False)
    template = forms.ChoiceField(label=gettext_lazy("Kind of job"), required=False)
    project = forms.ModelChoiceField(label=gettext_lazy("Project"), queryset=None, required=False,
                                     empty_label=gettext_lazy("Every project"))
    started_by = forms.ChoiceField(label=gettext_lazy("Started by"), required=False)
    date_from = forms.DateField(label=gettext_lazy("Created from"), required=False,
                                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    date_to = forms.DateField(label=gettext_lazy("Created until"), required=False,
                              widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def __init__(self, data, *, user):
        super().__init__(data)
        self.user = user
        self.fields["status"].choices = [("", _("Any status")), *JobStatus.choices]
        self.fields["template"].choices = [("", _("Any kind")), *((t.name, t.title) for t in TEMPLATES.values())]
        self.fields["project"].queryset = visible_projects(user).order_by("name")
        self.fields["started_by"].choices = [("", _("Anyone")), *self._starters()]

    def _starters(self) -> list[tuple[str, str]]:
        """The people who started the jobs this user can see: ours by name, the partner's with its site's name."""
        seen, choices = set(), []
        for username, name, initiator, partner in (
                visible_jobs(self.user).order_by().values_list("created_by__username", "created_by_name", "initiator",
                                                               "project__partner__name").distinct()):
            ours = initiator == settings.SITE_PARTY_ID
            value = (username if ours else "") or name
            if not value or value in seen:
                continue
            seen.add(value)
            choices.append((value, value if ours else _("%(user)s (%(partner)s)") % {"user": value, "partner": partner}))
        return sorted(choices, key=lambda choice: choice[1].lower())

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def filter(self, jobs):
        """The jobs that match every valid filter; a filter that is not valid is left out (the form says why)."""
        self.is_valid()  # fills cleaned_data with the valid fields only
        data = getattr(self, "cleaned_data", {})
        if data.get("status"):
            jobs = jobs.filter(status=data["status"])
        if data.get("template"):
            jobs = jobs.filter(template=data["template"])
        if data.get("project"):
            jobs = jobs.filter(project=data["project"])
        if data.get("started_by"):
            who = data["started_by"]
            jobs = jobs.filter(Q(created_by__username=who) | Q(created_by_name=who))
        if data.get("date_from"):
            jobs = jobs.filter(created_at__date__gte=data["date_from"])
        if data.get("date_to"):
            jobs = jobs.filter(created_at__date__lte=data["date_to"])
        return jobs

    @property
    def is_filtered(self) -> bool:
        return any(self.data.get(name) for name in self.fields)


def filtered_jobs(user, params) -> tuple[JobFilterForm, object]:
    """The filter form bound to the request's parameters, and the jobs it selects, newest first."""
    form = JobFilterForm(params, user=user)
    jobs = form.filter(visible_jobs(user).select_related("created_by").order_by("-created_at", "pk"))
    return form, jobs
