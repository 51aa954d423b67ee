"""Browser forms for datasets."""

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from .services import DELIMITERS

DELIMITER_CHOICES = [("", _("Detect automatically"))] + [(k, v) for k, v in DELIMITERS.items()]
ENCODING_CHOICES = [
    ("", _("Detect automatically (UTF-8, GBK/GB18030)")),
    ("utf-8", "UTF-8"),
    ("gb18030", _("GBK / GB18030 (Chinese)")),
    ("big5", _("Big5 (Traditional Chinese)")),
    ("latin-1", _("Latin-1 (Western European)")),
    ("cp1252", _("Windows-1252")),
    ("utf-16", "UTF-16"),
    ("shift_jis", _("Shift-JIS (Japanese)")),
]


class UploadForm(forms.Form):
    # Empty files pass here, as in the API (``DatasetUploadSerializer``): validation then
    # fails them with the one message both give, "The file is empty".
    file = forms.FileField(
        label=_("CSV file"), allow_empty_file=True,
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.tsv,text/csv"}),
    )
    name = forms.CharField(label=_("Name"), max_length=200, required=False, help_text=_("Leave empty to use the file name."))
    encoding = forms.ChoiceField(label=_("Text encoding"), choices=ENCODING_CHOICES, required=False)
    delimiter = forms.ChoiceField(label=_("Column separator"), choices=DELIMITER_CHOICES, required=False)


class VersionForm(forms.Form):
    """A dataset's next file: the columns are the dataset's, only the reading can be chosen."""

    file = forms.FileField(
        label=_("New file"), allow_empty_file=True,
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.tsv,text/csv"}),
    )
    encoding = forms.ChoiceField(label=_("Text encoding"), choices=ENCODING_CHOICES, required=False)
    delimiter = forms.ChoiceField(label=_("Column separator"), choices=DELIMITER_CHOICES, required=False)


class RereadForm(forms.Form):
    encoding = forms.ChoiceField(label=_("Text encoding"), choices=ENCODING_CHOICES, required=False)
    delimiter = forms.ChoiceField(label=_("Column separator"), choices=DELIMITER_CHOICES, required=False)


class MetadataForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(label=_("Description"), widget=forms.Textarea, required=False)
    tags = forms.CharField(label=_("Tags"), required=False, help_text=_("Separate tags with commas."))


class GrantForm(forms.Form):
    user = forms.ModelChoiceField(label=_("User"), queryset=get_user_model().objects.none())
    expires_at = forms.DateTimeField(
        label=_("Until (optional)"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=_("Leave empty for no end date."),
    )

    def __init__(self, *args, dataset=None, **kwargs):
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(is_active=True).order_by("username")
        if dataset is not None:
            users = users.exclude(pk=dataset.owner_id)
        self.fields["user"].queryset = users
