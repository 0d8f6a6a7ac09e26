"""Search pages: start a job, watch it live, cancel or delete it (downloads: download_views)."""

import logging

from django.contrib import messages
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import nas_engine
from webapp.accounts import quotas
from webapp.datasets.selectors import get_dataset_for_user
from webapp.searches import selectors, services
from webapp.searches.forms import SearchJobForm
from webapp.searches.models import SearchJob, Trial

logger = logging.getLogger(__name__)


@require_POST
def search_create(request, dataset_pk: int):
    dataset = get_dataset_for_user(user=request.user, pk=dataset_pk)
    form = SearchJobForm(request.POST, dataset=dataset)
    job = create_from_form(user=request.user, form=form)
    if job is None:
        context = {"dataset": dataset, "form": form, "leaderboard": selectors.dataset_leaderboard(dataset=dataset)}
        return render(request, "datasets/detail.html", context, status=400)
    return redirect("search_detail", pk=job.pk)


def create_from_form(*, user, form: SearchJobForm) -> SearchJob | None:
    """The search a bound form starts for ``user``, within their quotas; None, with the form's
    errors saying why, when it starts none. The page and the API both start searches here."""
    if not form.is_valid():
        return None
    try:
        with transaction.atomic():  # check_search locks the user until the job row is in
            quotas.check_search(user=user, budget_seconds=form.cleaned_data["budget_seconds"])
            return services.search_create(user=user, dataset=form.dataset, **form.cleaned_data)
    except quotas.QuotaExceeded as exc:
        form.add_error(exc.field, str(exc))
        return None


@require_GET
def search_estimate(request, dataset_pk: int):
    """The form's live estimate: about how many trials the settings buy; field errors → 400 JSON."""
    dataset = get_dataset_for_user(user=request.user, pk=dataset_pk)
    form = SearchJobForm(request.GET, dataset=dataset)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors_by_field()}, status=400)
    try:
        estimate = form.estimate()
    except (nas_engine.NasError, ValueError) as exc:  # settings the form let through but the engine refuses
        return JsonResponse({"errors": {"__all__": [str(exc)]}}, status=400)
    return JsonResponse(estimate.to_dict())


@require_GET
def search_detail(request, pk: int):
    job = selectors.get_search_for_user(user=request.user, pk=pk)
    return render(request, "searches/detail.html", {"job": job})


@require_POST
def search_cancel(request, pk: int):
    job = selectors.get_search_for_user(user=request.user, pk=pk)
    if services.search_cancel(job=job):
        messages.success(request, "The search was cancelled.")
    else:
        messages.info(request, "The search had already ended.")
    return redirect("search_detail", pk=job.pk)


@require_http_methods(["GET", "POST"])
def search_delete(request, pk: int):
    """GET (or a POST without ``confirm``) asks first, saying what goes with the search (its trained
    models and bundles; a running search is cancelled). Only the confirmation page's POST deletes."""
    job = selectors.get_search_for_user(user=request.user, pk=pk)
    if request.method != "POST" or request.POST.get("confirm") != "yes":
        models = job.trials.filter(status__in=Trial.WITH_MODEL).count()
        return render(request, "searches/delete.html", {"job": job, "models": models})
    services.search_delete(job=job)
    messages.success(request, f"Deleted search #{pk} and its models.")
    return redirect("home")


@require_POST
def search_rerun(request, pk: int):
    """Start the same search again (same dataset, settings and seed), within the owner's quotas."""
    job = selectors.get_search_for_user(user=request.user, pk=pk)
    try:
        with transaction.atomic():
            quotas.check_search(user=request.user, budget_seconds=job.budget_seconds)
            rerun = services.search_rerun(job=job, user=request.user)
    except quotas.QuotaExceeded as exc:
        messages.error(request, str(exc))
        return redirect("search_detail", pk=job.pk)
    messages.success(request, f"Started {rerun.display_name}, a re-run of {job.display_name}.")
    return redirect("search_detail", pk=rerun.pk)
