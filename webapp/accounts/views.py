"""Account pages: sign-up, a throttled log-in for the site and the admin (log-out is Django's own
view), and the API tokens page."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME, login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.views import LoginView
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from webapp.accounts import throttle, tokens
from webapp.accounts.models import ApiToken, Preferences


@login_not_required
def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    if not settings.SIGNUP_OPEN:  # the page says so; a post creates nobody
        status = 403 if request.method == "POST" else 200
        return render(request, "accounts/signup.html", {"signup_closed": True}, status=status)
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        return redirect("home")
    return render(request, "accounts/signup.html", {"form": form})


class LoginThrottleMixin:
    """Counts each log-in attempt before the password is checked, per username and per client
    address (``webapp.accounts.throttle``), and refuses it with 429 past LOGIN_MAX_FAILURES for the
    username or LOGIN_MAX_FAILURES_PER_ADDRESS for the address, for LOGIN_LOCKOUT_SECONDS. The
    site's and the admin's log-in forms share the counts: a guesser gets no extra tries by
    switching form."""

    def post(self, request, *args, **kwargs):
        self.attempt = throttle.LoginAttempt.start(request)
        if self.attempt.refusal:
            form = self.get_form()
            form.add_error(None, self.attempt.refusal)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        self.attempt.succeeded()
        return super().form_valid(form)


class ThrottledLoginView(LoginThrottleMixin, LoginView):
    """The site's log-in page."""

    template_name = "accounts/login.html"


class AdminLoginView(LoginThrottleMixin, LoginView):
    """The admin's log-in page (/admin/login/), throttled: what ``AdminSite.login`` shows, staff
    only, with the same context, so the admin's own template renders it unchanged."""

    authentication_form = AdminAuthenticationForm
    template_name = "admin/login.html"

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        request.current_app = admin.site.name

    def get(self, request, *args, **kwargs):
        if admin.site.has_permission(request):
            return redirect("admin:index")
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        request = self.request
        context.update(
            admin.site.each_context(request),
            title=_("Log in"),
            subtitle=None,
            app_path=request.get_full_path(),
            username=request.user.get_username(),
        )
        if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
            context[REDIRECT_FIELD_NAME] = reverse("admin:index", current_app=admin.site.name)
        return context


def api_tokens(request):
    """The user's API tokens: make one (shown once, on the answer to the post that made it), see when
    each was last used, revoke one."""
    made = None
    if request.method == "POST":
        name = (request.POST.get("name") or "").strip()
        if ApiToken.objects.filter(user=request.user, revoked_at__isnull=True).count() >= MAX_TOKENS:
            messages.error(request, f"You have {MAX_TOKENS} active tokens: revoke one you no longer use first.")
        else:
            _, made = tokens.token_create(user=request.user, name=name)
    rows = ApiToken.objects.filter(user=request.user)
    return render(request, "accounts/tokens.html", {"tokens": rows, "made": made, "max_tokens": MAX_TOKENS})


MAX_TOKENS = 20  # active tokens per user


@require_POST
def api_token_revoke(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)  # another user's: 404, as everywhere
    if tokens.token_revoke(user=request.user, pk=token.pk):
        messages.success(request, "The token was revoked: it no longer opens the API.")
    return redirect("api_tokens")


class AccountForm(forms.Form):
    email = forms.EmailField(
        label="Email address", required=False, help_text="Only for the emails you ask for below; never shown to anyone."
    )
    email_when_search_ends = forms.BooleanField(
        label="Email me when a search of mine finishes, fails or is cancelled", required=False
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("email_when_search_ends") and not cleaned.get("email"):
            self.add_error("email", "Give the address the emails should go to.")
        return cleaned


def account(request):
    """The user's email address and whether a search's end is emailed to it; links to the API tokens."""
    preferences, _ = Preferences.objects.get_or_create(user=request.user)
    initial = {"email": request.user.email, "email_when_search_ends": preferences.email_when_search_ends}
    form = AccountForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        request.user.email = form.cleaned_data["email"]
        request.user.save(update_fields=["email"])
        preferences.email_when_search_ends = form.cleaned_data["email_when_search_ends"]
        preferences.save(update_fields=["email_when_search_ends"])
        messages.success(request, "Saved.")
        return redirect("account")
    return render(request, "accounts/account.html", {"form": form}, status=400 if form.errors else 200)
