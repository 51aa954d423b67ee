"""Sign-in and user-management forms."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.password_validation import validate_password
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


class UserCreateForm(forms.Form):
    username = forms.RegexField(
        label=_("User name"),
        regex=r"^[\w.@+-]{1,150}$",
        help_text=_("Letters, digits and @ . + - _ only."),
    )
    full_name = forms.CharField(label=_("Full name"), max_length=150, required=False)
    email = forms.EmailField(label=_("E-mail"), required=False)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.ANALYST)
    password = forms.CharField(label=_("Initial password"), widget=forms.PasswordInput, strip=False)

    def clean_username(self):
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise ValidationError(_("A user with this name already exists."))
        return username

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password"):
            candidate = get_user_model()(username=cleaned.get("username", ""), email=cleaned.get("email", ""))
            validate_password(cleaned["password"], candidate)
        return cleaned


class UserRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)
    is_active = forms.BooleanField(label=_("Active"), required=False)

