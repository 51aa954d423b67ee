"""Browser forms for partners and projects. They only parse input; the services decide."""

from __future__ import annotations

import re

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from datasets.models import Dataset
from datasets.services import visible_datasets

from .models import GateDecider, Partner, ProjectTable
from .services import POLICY_FIELDS

MAX_BUNDLE_BYTES = 1024 * 1024  # a bundle is a few kilobytes; anything near this is not one
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$")


class BundleExportForm(forms.Form):
    proxy_address = forms.CharField(
        label=_("Address of this site's proxy"), max_length=255,
        help_text=_("host:port at which partner sites reach this site, for example fedweb.bank.example:7443."),
    )

    def clean_proxy_address(self):
        address = self.cleaned_data["proxy_address"].strip()
        match = _HOST_PORT.match(address)
        if not match or not 1 <= int(match.group(3)) <= 65535:
            raise forms.ValidationError(
                _("Write the address as host:port, for example fedweb.bank.example:7443."), code="host_port"
            )
        return address


class BundleImportForm(forms.Form):
    file = forms.FileField(
        label=_("The partner's bundle file"), required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json"}),
    )
    text = forms.CharField(
        label=_("…or paste its contents"), required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "placeholder": '{"format": "fedweb-site-bundle/1", …}'}),
    )

    def clean(self):
        data = super().clean()
        upload, text = data.get("file"), (data.get("text") or "").strip()
        if upload:
            if upload.size > MAX_BUNDLE_BYTES:
                raise forms.ValidationError(_("This file is too large to be a site bundle."), code="too_large")
            raw = upload.read()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise forms.ValidationError(_("This file is not a site bundle (it is not text)."), code="not_text") from None
        if not text:
            raise forms.ValidationError(_("Choose the partner's bundle file, or paste its contents."), code="required")
        data["bundle"] = text
        return data


LABELS_US, LABELS_PARTNER = "us", "partner"


class ProjectForm(forms.Form):
    partner = forms.ModelChoiceField(
        label=_("Partner"), queryset=Partner.objects.filter(is_active=True), empty_label=_("Choose a partner"),
    )
    name = forms.CharField(label=_("Project name"), max_length=200)
    purpose = forms.CharField(
        label=_("Purpose"), widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What the two organisations want to achieve together. The partner's admin reads this before answering."),
    )
    labels = forms.ChoiceField(
        label=_("Who holds the labels?"), widget=forms.RadioSelect, initial=LABELS_US,
        choices=[(LABELS_US, _("This site holds the labels")), (LABELS_PARTNER, _("The partner holds the labels"))],
        help_text=_("The labels are what a model learns to predict, for example whether a customer repaid a loan."),
    )

    @property
    def we_hold_labels(self) -> bool:
        return self.cleaned_data["labels"] == LABELS_US


class CommentForm(forms.Form):
    comment = forms.CharField(
        label=_("Comment (optional)"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Sent to the partner with your decision and kept in the history."),
    )


class JobSettingsForm(forms.Form):
    approve_partner_jobs = forms.BooleanField(
        label=_("A site admin here approves each job the partner starts"), required=False,
        help_text=_("The partner's jobs wait on their page until an admin here approves or refuses them."))
    gate_decider = forms.ChoiceField(
        label=_("Who continues a job paused after the overlap"), choices=GateDecider.choices,
        help_text=_("Both sites must choose the same: a paused job whose rule differs from this site's is refused "
                    "before it runs."))
    auto_confirm_models = forms.BooleanField(
        label=_("Publish the partner's models without our admin's confirmation"), required=False,
        help_text=_("When the partner publishes a model of this project, it is published here at once, instead of "
                    "waiting for a site admin here to confirm it."))


_DEFAULTS = {f.name: f.default for f in ProjectTable._meta.get_fields() if f.name.startswith("psi_")}


class PolicyForm(forms.Form):
    """The PSI policy of one of our tables in a project, explained rule by rule."""

    runs_per_day = forms.IntegerField(
        label=_("Intersections per day"), min_value=1, initial=_DEFAULTS["psi_runs_per_day"],
        help_text=_("How many times in 24 hours the partner may match ids against this table."),
    )
    min_set_size = forms.IntegerField(
        label=_("Partner's list: at least"), min_value=0, initial=_DEFAULTS["psi_min_set_size"],
        help_text=_("The partner's list of ids must hold at least this many, so it cannot be used to check a few chosen people."),
    )
    max_set_size = forms.IntegerField(
        label=_("Partner's list: at most"), min_value=0, initial=_DEFAULTS["psi_max_set_size"],
        help_text=_("The partner's list may hold at most this many ids, so it cannot be used to try every possible id."),
    )
    max_size_ratio = forms.FloatField(
        label=_("Largest size difference"), min_value=1.0, initial=_DEFAULTS["psi_max_size_ratio"],
        help_text=_("The larger of the two lists may be at most this many times the smaller one."),
    )
    min_overlap = forms.IntegerField(
        label=_("Smallest overlap"), min_value=0, initial=_DEFAULTS["psi_min_overlap"],
        help_text=_("Nothing is revealed if fewer ids than this match."),
    )
    partner_may_receive = forms.BooleanField(
        label=_("The partner may receive the intersection"), required=False, initial=_DEFAULTS["psi_partner_may_receive"],
        help_text=_("If ticked, the partner may also learn which of its ids are in this table. If not, it never receives that list."),
    )

    def clean(self):
        data = super().clean()
        low, high = data.get("min_set_size"), data.get("max_set_size")
        if low is not None and high is not None and low > high:
            self.add_error("max_set_size", _("This must not be smaller than the “at least” size."))
        return data

    def policy(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in POLICY_FIELDS}

    @classmethod
    def for_table(cls, table: ProjectTable, **kwargs):
        return cls(initial=table.policy(), prefix=f"t{table.pk}", **kwargs)


class _DatasetField(forms.ModelChoiceField):
    def label_from_instance(self, dataset):
        # Two datasets may share a name: the owner, the date and the version tell them apart.
        return _("%(name)s · v%(version)s · %(owner)s, %(day)s") % {
            "name": dataset.name, "version": dataset.version, "owner": dataset.owner.username,
            "day": timezone.localtime(dataset.created_at).strftime("%Y-%m-%d"),
        }


class AuthoriseForm(PolicyForm):
    dataset = _DatasetField(
        label=_("Dataset"), queryset=Dataset.objects.none(), empty_label=_("Choose one of this site's ready datasets"),
        help_text=_("The partner sees its name, its number of rows and its column names, never its rows."),
    )
    expires_at = forms.DateTimeField(
        label=_("Until (optional)"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=_("After this moment the partner can no longer use the table. Leave empty for no end date."),
    )

    field_order = ["dataset", "expires_at"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None:
            # The newest ready version of each dataset; an older one stays in the projects that use it.
            self.fields["dataset"].queryset = visible_datasets(user).newest_ready().order_by("name", "-created_at")
