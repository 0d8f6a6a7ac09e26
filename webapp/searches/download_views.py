"""A trial's downloads that a worker prepares (``webapp.searches.downloads``): the bundle (.zip), the
predictions for the job's dataset (.csv) and the test-split evaluation (JSON, for the comparison
panel). Each request answers at once: the file when it is ready (streamed from disk), else 202 with
how far the work has got (JSON for the page's script with ``Accept: application/json``, else a page
that polls and offers the file), or the failure in words."""

from __future__ import annotations

from django.http import FileResponse, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

import nas_engine
from nas_engine.diagram import describe_architecture
from webapp.searches import downloads, evaluation, selectors
from webapp.searches.models import Trial

POLL_SECONDS = 1  # Retry-After of a 202: how soon to ask again


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _filename(trial: Trial, kind: str) -> str:
    if kind == downloads.BUNDLE:
        return f"nas-studio-search{trial.job_id}-trial{trial.number}.zip"
    return f"search{trial.job_id}-trial{trial.number}-predictions.csv"


def _serve(trial: Trial, kind: str) -> FileResponse:
    path = downloads.file_path(trial, kind)
    content_type = "application/zip" if kind == downloads.BUNDLE else "text/csv"
    # Opened before answering: a file replaced meanwhile (a newer one renamed onto it) is read whole.
    handle = open(path, "rb")  # noqa: SIM115 - FileResponse closes it once sent
    return FileResponse(handle, as_attachment=True, filename=_filename(trial, kind), content_type=content_type)


def _failure(request, trial: Trial, kind: str, message: str, status: int, *, as_json: bool) -> HttpResponse:
    if as_json:
        response: HttpResponse = JsonResponse({"state": "failed", "error": message}, status=status)
    else:
        context = {"trial": trial, "job": trial.job, "what": downloads.WHAT[kind], "error": message}
        response = render(request, "searches/preparing.html", context, status=status)
    if status in (503, 507):
        response["Retry-After"] = "60"  # a full disk or a stopped broker is not fixed in seconds
    return response


def _prepared(request, pk: int, number: int, kind: str) -> HttpResponse:
    trial = selectors.get_trial_for_user(user=request.user, pk=pk, number=number)
    as_json = kind == downloads.EVALUATION or _wants_json(request)
    return prepared(request, trial, kind, as_json=as_json, serve_when_ready=not as_json)


def prepared(request, trial: Trial, kind: str, *, as_json: bool, serve_when_ready: bool) -> HttpResponse:
    """The file when it is ready and ``serve_when_ready``, else where its preparation stands (JSON with
    ``as_json``, else a page that polls): 202 while a worker makes it, the failure's own status if it
    failed. The API takes the file when ready and JSON otherwise."""
    try:
        downloads.check_model(trial)
        if kind == downloads.EVALUATION and (result := evaluation.cached_test_evaluation(trial)) is not None:
            layers = describe_architecture(trial.architecture)
            return JsonResponse({"trial": trial.to_dict(), "layers": layers, "evaluation": result})
        if kind != downloads.EVALUATION and downloads.is_ready(trial, kind):
            if serve_when_ready:
                return _serve(trial, kind)
            size = downloads.file_path(trial, kind).stat().st_size
            body = {"state": "ready", "progress": 1.0, "message": "", "url": request.path}
            return JsonResponse(body | {"filename": _filename(trial, kind), "bytes": size})
        progress = downloads.request(trial, kind)
    except nas_engine.NasError as exc:
        return _failure(request, trial, kind, str(exc), 409, as_json=as_json)
    except downloads.DownloadUnavailable as exc:
        return _failure(request, trial, kind, str(exc), exc.status, as_json=as_json)
    if progress.failed:
        return _failure(request, trial, kind, progress.message, progress.status, as_json=as_json)
    if as_json:
        response: HttpResponse = JsonResponse(progress.to_json() | {"url": request.path}, status=202)
    else:
        context = {"trial": trial, "job": trial.job, "what": downloads.WHAT[kind], "progress": progress.to_json()}
        response = render(request, "searches/preparing.html", context, status=202)
    response["Retry-After"] = str(POLL_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def trial_bundle(request, pk: int, number: int):
    """The trial's model bundle (.zip), exported and checked by a worker the first time."""
    return _prepared(request, pk, number, downloads.BUNDLE)


@require_GET
def trial_predictions(request, pk: int, number: int):
    """The trial's predictions for every row of the job's dataset (.csv), computed by a worker."""
    return _prepared(request, pk, number, downloads.PREDICTIONS)


@require_GET
def trial_evaluation(request, pk: int, number: int):
    """One trial for the comparison panel: its metrics and costs, its layers, and its confusion matrix
    or residuals on the test split (JSON); 202 while a worker computes it, 409 with an ``error``
    when it cannot be (no model, weights gone, the split cannot be rebuilt)."""
    return _prepared(request, pk, number, downloads.EVALUATION)
