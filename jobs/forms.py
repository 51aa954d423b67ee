"""The new-job form, made from the components' JSON Schemas (``jobs.pipelines.fields``).

Every setting becomes a field of the right kind (a number with its bounds, a choice with
its options in words, a tick box), labelled with the component's own title and
description in the user's language, and its default said in words. Nothing is JSON.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from fedweb.i18n import translate_schema
from projects.models import ProjectTable

from . import pipelines
from .models import Job, Model
from .templates import TEMPLATES


def _text(value) -> str:
    return _(value) if value else ""


def _shown(value) -> str:
    if isinstance(value, bool):
        return _("ticked") if value else _("not ticked")
    if value is None:
        return _("empty (not used)")
    if isinstance(value, float | int):
        return formats.number_format(value, use_l10n=True)
    return str(value)


def _bounds(schema: dict):
    """(min, max, exclusive min, exclusive max) of a number schema."""
    return (schema.get("minimum"), schema.get("maximum"), schema.get("exclusiveMinimum"),
            schema.get("exclusiveMaximum"))


def _exclusive(low, high):
    def check(value):
        if value is None:
            return
        if low is not None and value <= low:
            raise ValidationError(_("Must be more than %(n)s.") % {"n": _shown(low)}, code="min")
        if high is not None and value >= high:
            raise ValidationError(_("Must be less than %(n)s.") % {"n": _shown(high)}, code="max")
    return check


def _translated(component: str) -> dict:
    """The component's settings' schemas in the active language (titles, descriptions, choice labels)."""
    return translate_schema({"properties": pipelines.properties(component)})["properties"]


def field_for(name: str, schema: dict, default) -> forms.Field:
    """A form field for one setting of a component."""
    alternatives = schema.get("anyOf") or []
    nullable = any(alt.get("type") == "null" for alt in alternatives)
    base = next((alt for alt in alternatives if alt.get("type") != "null"), schema) if alternatives else schema
    kind = base.get("type")
    label = _text(schema.get("title")) or name
    help_parts = [_text(schema.get("description"))]
    choices = base.get("enum")
    # The pipeline's own words where a choice matters for privacy, else the catalog's label.
    words = {**(schema.get("x-enum-labels") or base.get("x-enum-labels") or {}), **pipelines.CHOICE_LABELS.get(name, {})}
    if choices:
        shown_default = words.get(default, default)
    else:
        shown_default = _shown(default)
    help_parts.append(_("Default: %(value)s.") % {"value": shown_default})
    if name in pipelines.PRIVACY_NOTES:
        help_parts.append(str(pipelines.PRIVACY_NOTES[name]))
    common = {"label": label, "help_text": " ".join(p for p in help_parts if p), "initial": default,
              "required": not nullable and kind != "boolean"}
    if choices:
        return forms.ChoiceField(choices=[(c, words.get(c, c)) for c in choices], **common)
    if kind == "boolean":
        return forms.BooleanField(**common)
    if kind in ("integer", "number"):
        low, high, xlow, xhigh = _bounds(base)
        field_class = forms.IntegerField if kind == "integer" else forms.FloatField
        extra = {"min_value": low, "max_value": high}
        if kind == "integer" and base.get("multipleOf"):
            extra["step_size"] = base["multipleOf"]
        field = field_class(**common, **{k: v for k, v in extra.items() if v is not None})
        if xlow is not None or xhigh is not None:
            field.validators.append(_exclusive(xlow, xhigh))
        if kind == "number":
            field.widget.attrs["step"] = "any"
        return field
    return forms.CharField(max_length=base.get("maxLength") or 200, min_length=base.get("minLength"), **common)


class StepForm(forms.Form):
    """One step: whether it runs (for optional steps) and its settings."""

    def __init__(self, step: pipelines.Step, *args, locked: bool = False, **kwargs):
        super().__init__(*args, prefix=step.id, **kwargs)
        self.step = step
        self.locked = locked
        if step.optional:
            self.fields["include"] = forms.BooleanField(label=_("Include this step"), required=False,
                                                        initial=step.default_on, disabled=locked)
        self.main, self.more = [], []
        translated = _translated(step.component)
        for name, _schema, default in pipelines.fields(step):
            self.fields[name] = field_for(name, translated[name], default)
            (self.main if name in step.main else self.more).append(name)

    def main_fields(self):
        return [self[name] for name in self.main]

    def more_fields(self):
        return [self[name] for name in self.more]

    @property
    def included(self) -> bool:
        if not self.step.optional:
            return True
        if self.is_bound and not self.locked:
            return self.fields["include"].widget.value_from_datadict(self.data, self.files, self.add_prefix("include"))
        return bool(self.get_initial_for_field(self.fields["include"], "include"))

    def values(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.main + self.more}


def _table_choices(project):
    live = ProjectTable.objects.live().filter(project=project).select_related("dataset")
    ours = [(str(t.dataset.pk), t.dataset) for t in live]
    theirs = [(r.table_id, r) for r in project.remote_tables.filter(is_authorised=True)]
    return ours, theirs


class PipelineForm:
    """The whole new-job (or retune) form: a name, the two tables, one ``StepForm`` per step."""

    def __init__(self, template: str, project, data=None, *, job: Job | None = None):
        self.template, self.project, self.job = template, project, job
        self.info = TEMPLATES[template]
        self.retune = job is not None
        chosen, values = pipelines.read(job.spec) if job else (None, {})
        ours, theirs = _table_choices(project)
        self.our_tables, self.partner_tables = ours, theirs
        initial = {"name": job.name if job else str(self.info.title)}
        if job:
            initial["our_table"], initial["partner_table"] = pipelines.tables_of(job.spec, project)
            initial["pause_after_psi"] = "psi" in (job.spec.get("pause_after") or [])
        else:  # the usual case is one table each side: chosen already
            initial["our_table"] = ours[0][0] if ours else None
            initial["partner_table"] = theirs[0][0] if theirs else None
        self.head = _HeadForm(data, initial=initial, ours=ours, theirs=theirs, template=template, project=project,
                              locked=self.retune)
        self.steps = []
        if template == "score":
            return
        for step in pipelines.steps_of(template):
            if step.auxiliary:
                continue
            step_initial = {}
            if job:
                step_initial = {**values.get(step.id, {})}
                if step.optional:
                    step_initial["include"] = step.id in chosen
            form = StepForm(step, data, initial=step_initial or None, locked=self.retune)
            if self.retune and step.optional and step.id not in chosen:
                continue  # a retune keeps the job's steps
            self.steps.append(form)

    def is_valid(self) -> bool:
        ok = self.head.is_valid()
        for form in self.steps:
            if form.step.optional and not form.included:
                continue  # a skipped step's settings are not checked
            ok = form.is_valid() and ok
        if ok and not self.retune:
            on = {f.step.id for f in self.steps if f.included}
            for form in self.steps:
                missing = [n for n in form.step.needs if n not in on]
                if form.step.id in on and missing:
                    need = next(f.step.title for f in self.steps if f.step.id == missing[0])
                    form.add_error(None, _("This step needs the step “%(step)s”: include it too, or leave this one "
                                           "out.") % {"step": need})
                    ok = False
        return ok

    def chosen(self) -> set[str]:
        return {f.step.id for f in self.steps if f.step.optional and f.included}

    def values(self) -> dict[str, dict]:
        return {f.step.id: f.values() for f in self.steps if f.included}

    def spec(self) -> dict:
        head = self.head.cleaned_data
        if self.template == "score":
            from .templates import build

            return build("score", self.project, our_table=head["our_table"], partner_table=head["partner_table"],
                         options={"model": head["model"], "reveal": head.get("reveal") or "both"})
        return pipelines.build(self.template, self.project, our_table=head["our_table"],
                               partner_table=head["partner_table"], chosen=self.chosen(), values=self.values(),
                               pause_after_psi=head.get("pause_after_psi", False))

    def changes(self) -> dict:
        """For a retune: {node: {"common": {setting: new value}}} of what differs from the job."""
        _chosen, old = pipelines.read(self.job.spec)
        changes = {}
        for node, values in self.values().items():
            step = next(f.step for f in self.steps if f.step.id == node)
            before = {name: old.get(node, {}).get(name, default) for name, _schema, default in pipelines.fields(step)}
            diff = {k: v for k, v in values.items() if before.get(k) != v}
            if diff:
                changes[node] = {"common": diff}
        return changes


class _HeadForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name of the job"), max_length=200,
                           help_text=gettext_lazy("Shown in the job lists at both sites."))

    def __init__(self, *args, ours, theirs, template, project, locked=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["our_table"] = forms.ChoiceField(
            label=_("This site's table"), choices=[(k, d.name) for k, d in ours], widget=forms.RadioSelect,
            disabled=locked, help_text=_("Tables authorised for this project here. Only their names, sizes and "
                                          "columns are shown to the partner, never rows."))
        self.fields["partner_table"] = forms.ChoiceField(
            label=_("The partner's table"), choices=[(k, r.name) for k, r in theirs], widget=forms.RadioSelect,
            disabled=locked, help_text=_("Tables the partner authorised for this project."))
        if template == "score":
            published = [(str(m.pk), m.label) for m in Model.objects.filter(project=project, job__isnull=False)
                         .order_by("name", "-number") if m.is_published]
            self.fields["model"] = forms.ChoiceField(
                label=_("The model to score with"), choices=published,
                help_text=_("A model version both sites published; the preparation its training used is applied too. "
                            "Publish a version on the project's Models page."))
            self.fields["reveal"] = field_for("reveal", _translated("psi")["reveal"], "both")
        elif template != "psi":
            self.fields["pause_after_psi"] = forms.BooleanField(
                label=_("Stop after the overlap for approval"), required=False,
                help_text=_("The job pauses once the overlap is found and shows its size; it goes on only when "
                            "someone allowed to decide continues it."))


class SweepForm(forms.Form):
    """One setting (or two) and the values to try; each combination becomes a job."""

    values1 = forms.CharField(label=gettext_lazy("Values to try"), max_length=500,
                              help_text=gettext_lazy("Separate values with commas, e.g. 0.05, 0.1, 0.2."))
    values2 = forms.CharField(label=gettext_lazy("Values of the second setting"), max_length=500, required=False)

    def __init__(self, job: Job, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        self.settings = {}
        _chosen, values = pipelines.read(job.spec)
        for step in pipelines.steps_of(job.template):
            if step.id not in values or step.auxiliary:
                continue
            translated = _translated(step.component)
            for name, schema, default in pipelines.fields(step):
                if (schema.get("type") in ("integer", "number", "string")) or schema.get("anyOf"):
                    field = field_for(name, translated[name], default)
                    self.settings[f"{step.id}:{name}"] = (step, name, field)
        choices = [(key, f"{step.title} · {field.label}") for key, (step, name, field) in self.settings.items()]
        self.fields["param1"] = forms.ChoiceField(label=_("Setting to vary"), choices=choices,
                                                  initial=next((k for k in self.settings if k.endswith(":learning_rate")), None))
        self.fields["param2"] = forms.ChoiceField(label=_("A second setting (optional, for a grid)"),
                                                  choices=[("", _("None"))] + choices, required=False)
        self.order_fields(["param1", "values1", "param2", "values2"])

    def _values(self, key: str, text: str) -> list:
        _step, _name, field = self.settings[key]
        parts = [p.strip() for p in text.replace("，", ",").replace(";", ",").split(",") if p.strip()]
        out = []
        for part in parts:
            try:
                value = field.clean(part)
            except ValidationError as exc:
                raise ValidationError(_("“%(value)s” is not a valid value for %(setting)s: %(reason)s")
                                      % {"value": part, "setting": field.label, "reason": " ".join(exc.messages)})
            if value not in out:
                out.append(value)
        return out

    def clean(self):
        data = super().clean()
        if "param1" in data and "values1" in data:
            data["list1"] = self._values(data["param1"], data["values1"])
            if len(data["list1"]) < 2 and not data.get("param2"):
                self.add_error("values1", _("Give at least two different values."))
        if data.get("param2"):
            if data["param2"] == data.get("param1"):
                self.add_error("param2", _("Choose a different setting, or none."))
            elif not data.get("values2"):
                self.add_error("values2", _("Give the values of the second setting."))
            else:
                data["list2"] = self._values(data["param2"], data["values2"])
        return data

    def axes(self) -> list[dict]:
        out = []
        for key, values in ((self.cleaned_data["param1"], self.cleaned_data["list1"]),
                            (self.cleaned_data.get("param2"), self.cleaned_data.get("list2"))):
            if key:
                step, name, _field = self.settings[key]
                out.append({"node": step.id, "param": name, "values": values})
        return out
