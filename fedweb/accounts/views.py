"""Sign in, sign out, password change, API tokens, the pages' language, and the site admin's user pages."""

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
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from fedweb.api.models import ApiToken
from fedweb.api.tokens import create_token, revoke_token
from fedweb.audit.models import AuditAction
from fedweb.audit.services import record

from . import services
from .forms import ThrottledAuthenticationForm, UserCreateForm, UserRoleForm


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
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user = services.create_user(
            by=request.user, request=request, username=data["username"], password=data["password"],
            role=data["role"], email=data["email"], full_name=data["full_name"],
        )
        messages.success(request, _("User %(name)s was created.") % {"name": user.username})
        return redirect("siteadmin:users")
    rows = get_user_model().objects.order_by("username")
    return render(request, "siteadmin/users.html", {"users": rows, "form": form})


@site_admin_required
@require_POST
def user_update(request, pk):
    target = get_object_or_404(get_user_model(), pk=pk)
    form = UserRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a role."))
        return redirect("siteadmin:users")
    try:
        services.update_user(
            by=request.user, request=request, user=target,
            role=form.cleaned_data["role"], is_active=form.cleaned_data["is_active"],
        )
        messages.success(request, _("User %(name)s was updated.") % {"name": target.username})
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    return redirect("siteadmin:users")


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
