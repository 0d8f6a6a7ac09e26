"""Account pages: sign-up, a throttled log-in for the site and the admin (log-out is Django's own view)."""

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME, login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _


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


def failure_key(address: str, username: str) -> str:
    """Cache key counting failed log-ins of one username from one address."""
    return f"login-failures:{address}:{username.strip().lower()}"


class LoginThrottleMixin:
    """Refuses a username from one address after LOGIN_MAX_FAILURES wrong passwords in a row, for
    LOGIN_LOCKOUT_SECONDS (counted in the shared cache, so every server process sees the same
    count). The site's and the admin's log-in forms share one count: a guesser gets no extra tries
    by switching form."""

    def _key(self) -> str:
        return failure_key(self.request.META.get("REMOTE_ADDR", ""), self.request.POST.get("username") or "")

    def post(self, request, *args, **kwargs):
        if cache.get(self._key(), 0) >= settings.LOGIN_MAX_FAILURES:
            form = self.get_form()
            minutes = max(1, round(settings.LOGIN_LOCKOUT_SECONDS / 60))
            form.add_error(None, f"Too many failed attempts for this username; try again in {minutes} minutes.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        key = self._key()
        cache.add(key, 0, timeout=settings.LOGIN_LOCKOUT_SECONDS)
        cache.incr(key)
        return super().form_invalid(form)

    def form_valid(self, form):
        cache.delete(self._key())
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
