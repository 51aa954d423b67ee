"""Sign-in and user-management forms."""

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from fedweb.audit.services import client_ip

from . import throttle
from .models import Role

# One answer for an unknown user and a wrong password, so the form never tells
# an attacker which accounts exist.
INVALID_LOGIN = _("The user name or password is not right. Both are case-sensitive.")


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form with our messages.

    Throttling and auditing happen in ``backends.ThrottledModelBackend``, behind
    ``authenticate()``; the form only says which refusal it was.
    """

    error_messages = {
        "invalid_login": INVALID_LOGIN,
        "inactive": INVALID_LOGIN,
        "throttled": _("Too many failed sign-ins. Try again in %(minutes)s minute(s)."),
    }

    def get_invalid_login_error(self):
        wait = throttle.seconds_locked(self.cleaned_data.get("username") or "", client_ip(self.request))
        if wait:
            return ValidationError(
                self.error_messages["throttled"], code="throttled", params={"minutes": (wait + 59) // 60}
            )
        return ValidationError(self.error_messages["invalid_login"], code="invalid_login")


def language_choices():
    return [("", _("Follow the browser")), *settings.LANGUAGES]


class UserCreateForm(forms.Form):
    username = forms.RegexField(
        label=_("User name"),
        regex=r"^[\w.@+-]{1,150}$",
        help_text=_("Letters, digits and @ . + - _ only."),
        error_messages={"invalid": _("Use letters, digits and @ . + - _ only, at most 150 of them.")},
    )
    full_name = forms.CharField(label=_("Full name"), max_length=300, required=False)
    email = forms.EmailField(label=_("E-mail"), required=False)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.ANALYST)
    language = forms.ChoiceField(label=_("Language of the pages"), choices=language_choices, required=False)
    password = forms.CharField(label=_("Initial password"), widget=forms.PasswordInput, strip=False)

    def clean_username(self):
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise ValidationError(_("A user with this name already exists."))
        return username


class UserEditForm(forms.Form):
    """A site admin edits someone's name, e-mail, role and language (services.update_user)."""

    full_name = forms.CharField(label=_("Full name"), max_length=300, required=False)
    email = forms.EmailField(label=_("E-mail"), required=False)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)
    language = forms.ChoiceField(label=_("Language of the pages"), choices=language_choices, required=False)

    def __init__(self, *args, user, own: bool, **kwargs):
        initial = {"full_name": user.get_full_name(), "email": user.email, "role": user.role, "language": user.language}
        super().__init__(*args, initial=initial, **kwargs)
        if own:
            # Shown, not sent: a disabled field keeps its initial value, so the role cannot change here.
            self.fields["role"].disabled = True
            self.fields["role"].help_text = _("You cannot change your own role: another site admin has to do it.")


class UserPasswordForm(forms.Form):
    """A new password for someone else; Django's password validators judge it (services.set_password)."""

    password1 = forms.CharField(label=_("New password"), strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(label=_("The new password again"),
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password1") and cleaned.get("password2") and cleaned["password1"] != cleaned["password2"]:
            self.add_error("password2", _("The two passwords are not the same."))
        return cleaned


def add_service_error(form: forms.Form, exc) -> None:
    """Put a service's refusal on the form: its sentence above the form, its field messages on the fields."""
    aliases = {"password": "password1"}
    for name, messages in (exc.details or {}).items():
        field = name if name in form.fields else aliases.get(name)
        for message in messages if isinstance(messages, list) else [messages]:
            form.add_error(field if field in form.fields else None, str(message))
    form.add_error(None, exc.message)
