"""The staff operations page and the JSON it polls.

The page polls `status.json` every few seconds rather than holding a WebSocket: nothing here
is pushed to us (Celery's inspect is itself a broadcast that waits for replies, queue depth is
an LLEN, disk use a walk), so a socket would only move the same polling loop into the server,
once per open page. Plain requests also keep the staff check in one ordinary decorator.
"""

from functools import wraps

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from webapp.operations import selectors

POLL_SECONDS = 3


def staff_required(view):
    """Anonymous users go to the login page; logged-in users who are not staff get 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied("The operations page is for staff.")
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@staff_required
def operations_index(request):
    # The tables are filled by static/js/operations.js from status.json, at once and then on every poll.
    context = {
        **admin.site.each_context(request),
        "title": "Operations",
        "poll_seconds": POLL_SECONDS,
    }
    return render(request, "operations/index.html", context)


@require_GET
@never_cache
@staff_required
def operations_status(request):
    return JsonResponse(selectors.operations_status())
