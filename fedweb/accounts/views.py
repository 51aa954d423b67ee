"""Sign in, sign out, password change, API tokens, the pages' language, and the site admin's user pages.

The user pages only parse forms and call ``services``: every rule (who may, the guard rails, what is
audited, which sessions and tokens end) lives there.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from fedweb.api.errors import ServiceError
from fedweb.api.models import ApiToken
from fedweb.api.tokens import create_token, revoke_token
from fedweb.audit.models import AuditAction
from fedweb.audit.services import record

from . import services
from .forms import ThrottledAuthenticationForm, UserCreateForm, UserEditForm, UserPasswordForm, add_service_error


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("home")

    def form_valid(self, form):
        response = super().form_valid(form)
        record(AuditAction.PASSWORD_CHANGE, request=self.request, obj=self.request.user)
        messages.success(self.request, _("Your password was changed."))
        return response


def site_admin_required(view):
    @login_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_site_admin:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


@login_required
def tokens(request):
    """List the user's API tokens and create a new one (its text is shown once)."""
    new_token = None
    if request.method == "POST":
        name = (request.POST.get("name") or "").strip() or _("Script")
        try:
            days = int(request.POST.get("days") or 90)
            _token, new_token = create_token(user=request.user, name=name, days=days, request=request)
        except ValueError:
            messages.error(request, _("A token lasts between 1 and 366 days."))
    rows = ApiToken.objects.filter(user=request.user)
    return render(request, "accounts/tokens.html", {"tokens": rows, "new_token": new_token})


@login_required
@require_POST
def token_revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    revoke_token(user=request.user, token=token, request=request)
    messages.success(request, _("The token was revoked. Scripts using it stop working now."))
    return redirect("tokens")


@site_admin_required
def users(request):
    """Every user of the site, and the form that adds one."""
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.create_user(
                by=request.user, request=request, username=data["username"], password=data["password"],
                role=data["role"], email=data["email"], full_name=data["full_name"], language=data["language"],
            )
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _("User %(name)s was created.") % {"name": user.username})
            return redirect("siteadmin:user", pk=user.pk)
    rows = get_user_model().objects.order_by("-is_active", "username")
    status = 400 if form.is_bound else 200
    return render(request, "siteadmin/users.html", {"users": rows, "form": form}, status=status)


def _user_page(request, target, *, edit_form=None, password_form=None, status=200):
    own = target.pk == request.user.pk
    return render(request, "siteadmin/user.html", {
        "target": target,
        "own": own,
        "edit_form": edit_form or UserEditForm(user=target, own=own),
        "password_form": password_form or UserPasswordForm(),
        "live_tokens": ApiToken.objects.filter(
            user=target, revoked_at__isnull=True, expires_at__gt=timezone.now()).count(),
    }, status=status)


@site_admin_required
def user_detail(request, pk):
    """One user's page: name, e-mail, role and language; a new password; deactivate or reactivate."""
    target = get_object_or_404(get_user_model(), pk=pk)
    if request.method != "POST":
        return _user_page(request, target)
    form = UserEditForm(request.POST, user=target, own=target.pk == request.user.pk)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.update_user(by=request.user, request=request, user=target, full_name=data["full_name"],
                                 email=data["email"], role=data["role"], language=data["language"])
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _("The changes to %(name)s were saved.") % {"name": target.username})
            return redirect("siteadmin:user", pk=target.pk)
    target.refresh_from_db()
    return _user_page(request, target, edit_form=form, status=400)


@site_admin_required
@require_POST
def user_password(request, pk):
    target = get_object_or_404(get_user_model(), pk=pk)
    form = UserPasswordForm(request.POST)
    if form.is_valid():
        try:
            revoked = services.set_password(by=request.user, request=request, user=target,
                                            password=form.cleaned_data["password1"])
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, ngettext(
                "The new password for %(name)s is set. They were signed out everywhere and %(n)s API token was "
                "revoked; tell them the new password in person.",
                "The new password for %(name)s is set. They were signed out everywhere and %(n)s API tokens were "
                "revoked; tell them the new password in person.", revoked) % {"name": target.username, "n": revoked})
            return redirect("siteadmin:user", pk=target.pk)
    return _user_page(request, target, password_form=form, status=400)


@site_admin_required
@require_POST
def user_deactivate(request, pk):
    target = get_object_or_404(get_user_model(), pk=pk)
    try:
        services.deactivate(by=request.user, request=request, user=target)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _(
            "%(name)s was deactivated: they cannot sign in, their sessions ended and their API tokens were revoked. "
            "Their actions stay in the audit trail and what they own stays as it is.") % {"name": target.username})
    return redirect("siteadmin:user", pk=target.pk)


@site_admin_required
@require_POST
def user_reactivate(request, pk):
    target = get_object_or_404(get_user_model(), pk=pk)
    services.reactivate(by=request.user, request=request, user=target)
    messages.success(request, _("%(name)s can sign in again with their password. API tokens revoked earlier stay "
                                "revoked.") % {"name": target.username})
    return redirect("siteadmin:user", pk=target.pk)


@require_POST
def language(request):
    """Switch the pages' language: saved on the user, and in Django's language cookie for
    the sign-in page and any browser where nobody is signed in."""
    code = request.POST.get("language", "")
    if code not in dict(settings.LANGUAGES):
        return HttpResponseBadRequest(_("Unknown language."))
    if request.user.is_authenticated:
        services.set_language(user=request.user, language=code)
    target = request.POST.get("next") or request.META.get("HTTP_REFERER") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        target = reverse("home")
    response = HttpResponseRedirect(target)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, code,
        max_age=settings.LANGUAGE_COOKIE_AGE, path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN, secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY, samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    return response
