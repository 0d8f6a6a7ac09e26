"""The API's endpoints. Each reads and writes through the same selectors, forms and services as the
pages, so ownership (another user's id answers 404), validation, messages and quotas are theirs."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from ninja import File, Form, NinjaAPI, Router, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.files import UploadedFile

from webapp.api import serving
from webapp.api.auth import BearerToken, RateLimited
from webapp.api.schemas import (
    Cancelled,
    DatasetList,
    DatasetOut,
    Errors,
    Message,
    PredictIn,
    PredictOut,
    Preparing,
    SearchIn,
    SearchList,
    SearchOut,
    TrialOut,
)
from webapp.datasets import selectors as dataset_selectors
from webapp.datasets import services as dataset_services
from webapp.datasets.models import Dataset
from webapp.datasets.views import create_from_upload
from webapp.searches import download_views, downloads, selectors, services
from webapp.searches.forms import SearchJobForm
from webapp.searches.models import SearchJob, Trial
from webapp.searches.views import create_from_form

api = NinjaAPI(
    title="NAS Studio API",
    version="1",
    description=(
        "Upload datasets, start and watch searches, download model bundles and get predictions. "
        "Send a personal token (made on your account's API tokens page, or by `manage.py api_token`) as "
        "`Authorization: Bearer <token>`. Another user's ids answer 404, as on the pages."
    ),
    auth=BearerToken(),
    urls_namespace="api",
    docs_url="/docs/",
    openapi_url="/schema/",
)
router = Router()
MAX_LIST = 100


def _page(rows, limit: int, offset: int):
    """``limit`` rows (1 to MAX_LIST) from ``offset`` on."""
    start = max(0, offset)
    return rows[start : start + min(max(1, limit), MAX_LIST)]


def _errors(errors: dict[str, list[str]], status: int = 400) -> JsonResponse:
    return JsonResponse({"errors": errors}, status=status)


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    """A body or parameter that does not parse: 400 with each field's message, as the form's are."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "form", "file")]
        errors.setdefault(".".join(location[1:] if location[:1] == ["payload"] else location) or "__all__", []).append(
            str(error.get("msg", "invalid"))
        )
    return _errors(errors)


@api.exception_handler(AuthenticationError)
def _unauthorized(request, exc):
    response = JsonResponse({"detail": "Send a valid API token: Authorization: Bearer <token>."}, status=401)
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    """A body that is not JSON (400, as a field error of the whole request), or too large (413)."""
    if isinstance(exc.__cause__, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
        message = f"The request body is larger than the {limit} MB this server reads."
        return JsonResponse({"detail": message}, status=413)
    if exc.status_code == 400:
        return _errors({"__all__": [f"{exc}: send JSON (Content-Type: application/json)."]})
    return JsonResponse({"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(RateLimited)
def _rate_limited(request, exc: RateLimited):
    response = JsonResponse({"detail": str(exc)}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(Http404)
def _not_found(request, exc):
    return JsonResponse({"detail": "Not found."}, status=404)


# --- datasets -----------------------------------------------------------------------------------------


def _dataset(dataset: Dataset, *, profile: bool = False) -> dict:
    return dataset.to_dict() | {
        "original_filename": dataset.original_filename,
        "kind": "images" if dataset.image else "table",
        "profile": dataset.profile if profile else None,
    }


@router.post("/datasets/", response={201: DatasetOut, 400: Errors}, summary="Upload a dataset")
def dataset_upload(
    request,
    file: UploadedFile | None = File(None, description="A CSV, or images (.zip / .tar.gz of class folders, .npz)"),  # noqa: B008
    name: str = Form(""),  # noqa: B008
    image_size: int | None = Form(None),  # noqa: B008
):
    """Upload a CSV or an image archive (multipart, field ``file``); the answer holds its profile.
    The limits and quotas of the upload page apply; a refused file leaves nothing behind."""
    dataset, form = create_from_upload(request)
    if dataset is None:
        return Status(400, {"errors": form.error_lists()})
    return Status(201, _dataset(dataset, profile=True))


@router.get("/datasets/", response=DatasetList, summary="List your datasets")
def dataset_list(request, limit: int = 20, offset: int = 0):
    datasets = Dataset.objects.filter(owner=request.user)
    return {"count": datasets.count(), "results": [_dataset(d) for d in _page(datasets, limit, offset)]}


@router.get("/datasets/{dataset_id}/", response=DatasetOut, summary="A dataset with its profile")
def dataset_detail(request, dataset_id: int):
    return _dataset(dataset_selectors.get_dataset_for_user(user=request.user, pk=dataset_id), profile=True)


@router.delete("/datasets/{dataset_id}/", response={204: None}, summary="Delete a dataset, its searches and models")
def dataset_delete(request, dataset_id: int):
    dataset = dataset_selectors.get_dataset_for_user(user=request.user, pk=dataset_id)
    dataset_services.dataset_delete(dataset=dataset)
    return Status(204, None)


# --- searches -----------------------------------------------------------------------------------------


def _trial(trial: Trial) -> dict:
    with_model = trial.status in Trial.WITH_MODEL
    return trial.to_dict() | {
        "bundle_url": f"/api/v1/trials/{trial.pk}/bundle/" if with_model else None,
        "predict_url": f"/api/v1/trials/{trial.pk}/predict/" if with_model else None,
    }


def _search(job: SearchJob, *, detail: bool = False) -> dict:
    record = job.to_dict()
    keys = ("status", "progress", "message", "error", "created_at", "started_at", "finished_at", "name", "notes")
    body = {key: record.pop(key) for key in keys}
    record.pop("id")
    body |= {"id": job.pk, "dataset": job.dataset_id, "metric": record["metric"], "settings": record}
    body["trials"] = job.trials.count()
    if detail:
        trials = {t.number: t for t in job.trials.all()}
        body["front"] = [_trial(t) for t in sorted(trials.values(), key=lambda t: t.number) if t.on_front]
        chosen = trials.get(job.recommended_number) if job.recommended_number is not None else None
        body["recommended"] = _trial(chosen) if chosen is not None else None
    return body


def search_form_data(form: SearchJobForm, given: dict) -> dict:
    """The form's data for ``given`` API settings: the values the page starts with for this dataset
    (its ticked columns, its suggested types...), overridden by those given. ``column_types`` maps a
    column to its type field."""
    data = {}
    for name, field in form.fields.items():
        initial = form.get_initial_for_field(field, name)
        if initial not in (None, ""):
            data[name] = initial
    for name, value in given.items():
        if name == "column_types":
            continue
        data[name] = value if not isinstance(value, bool) else ("on" if value else "")
    for column, kind in (given.get("column_types") or {}).items():
        if column not in form.type_columns:
            raise KeyError(column)
        data[f"type_{form.type_columns.index(column)}"] = kind
    return data


def form_errors(form: SearchJobForm) -> dict[str, list[str]]:
    """The form's errors under the API's names (a column's type error under ``column_types``)."""
    errors: dict[str, list[str]] = {}
    for name, messages in form.errors_by_field().items():
        errors.setdefault("column_types" if name.startswith("type_") else name, []).extend(messages)
    return errors


@router.post("/searches/", response={201: SearchOut, 400: Errors}, summary="Start a search")
def search_create(request, payload: SearchIn):
    """Start a search with the page's settings, checked as the page checks them (same messages,
    same quotas). A refused search answers 400 with each field's message; nothing is made."""
    dataset = dataset_selectors.get_dataset_for_user(user=request.user, pk=payload.dataset)
    given = payload.dict(exclude_none=True, exclude={"dataset"})
    form = SearchJobForm(dataset=dataset)
    try:
        data = search_form_data(form, given)
    except KeyError as exc:
        return Status(400, {"errors": {"column_types": [f"Column {exc} is not in this dataset."]}})
    form = SearchJobForm(data, dataset=dataset)
    job = create_from_form(user=request.user, form=form)
    if job is None:
        return Status(400, {"errors": form_errors(form)})
    return Status(201, _search(job, detail=True))


@router.get("/searches/", response=SearchList, summary="List your searches")
def search_list(request, limit: int = 20, offset: int = 0, dataset: int | None = None):
    jobs = selectors.search_list(user=request.user).order_by("-pk")
    if dataset is not None:
        jobs = jobs.filter(dataset_id=dataset)
    return {"count": jobs.count(), "results": [_search(job) for job in _page(jobs, limit, offset)]}


@router.get("/searches/{search_id}/", response=SearchOut, summary="A search: status, progress, front, recommended")
def search_detail(request, search_id: int):
    return _search(selectors.get_search_for_user(user=request.user, pk=search_id), detail=True)


@router.get("/searches/{search_id}/trials/", response=list[TrialOut], summary="Every model a search tried")
def search_trials(request, search_id: int):
    job = selectors.get_search_for_user(user=request.user, pk=search_id)
    return [_trial(t) for t in job.trials.order_by("number")]


@router.post("/searches/{search_id}/cancel/", response=Cancelled, summary="Cancel a queued or running search")
def search_cancel(request, search_id: int):
    job = selectors.get_search_for_user(user=request.user, pk=search_id)
    cancelled = services.search_cancel(job=job)
    job.refresh_from_db()
    return {"cancelled": cancelled, "search": _search(job, detail=True)}


@router.delete("/searches/{search_id}/", response={204: None}, summary="Delete a search and its models")
def search_delete(request, search_id: int):
    services.search_delete(job=selectors.get_search_for_user(user=request.user, pk=search_id))
    return Status(204, None)


# --- trials: bundles and predictions ------------------------------------------------------------------


def _trial_for(request, trial_id: int) -> Trial:
    return selectors.get_trial_by_id_for_user(user=request.user, pk=trial_id)


@router.get("/trials/{trial_id}/", response=TrialOut, summary="One model of a search")
def trial_detail(request, trial_id: int):
    return _trial(_trial_for(request, trial_id))


@router.get(
    "/trials/{trial_id}/bundle/",
    response={200: None, 202: Preparing, 409: Message, 503: Message, 507: Message},
    summary="The model bundle (.zip)",
)
def trial_bundle(request, trial_id: int):
    """The zip the model page offers. The first request asks a worker to export and check it:
    until it is ready the answer is 202 with how far it got; ask again after Retry-After seconds."""
    trial = _trial_for(request, trial_id)
    return download_views.prepared(request, trial, downloads.BUNDLE, as_json=True, serve_when_ready=True)


@router.post(
    "/trials/{trial_id}/predict/",
    response={200: PredictOut, 202: Preparing, 400: Errors, 409: Message, 503: Message, 507: Message},
    summary="Predict rows with a model",
)
def trial_predict(request, trial_id: int, payload: PredictIn):
    """Predictions for raw rows (column: value, as in the training file; null is a missing value),
    answered by the bundle's own ONNX model and encoding: the same as its predict.py on those rows.
    While the bundle is first made, 202 as for the bundle."""
    trial = _trial_for(request, trial_id)
    if len(payload.rows) > settings.API_PREDICT_MAX_ROWS:
        return Status(400, {"errors": {"rows": [f"At most {settings.API_PREDICT_MAX_ROWS:,} rows a call."]}})
    if not downloads.is_ready(trial, downloads.BUNDLE):
        response = download_views.prepared(request, trial, downloads.BUNDLE, as_json=True, serve_when_ready=False)
        if response.status_code != 200:
            return response
    model = serving.served_model(downloads.file_path(trial, downloads.BUNDLE))
    try:
        return Status(200, model.predict(payload.rows))
    except serving.BadRows as exc:
        return Status(400, {"errors": {"rows": [str(exc)]}})


api.add_router("/", router)


def urls() -> list:
    """The API's URL patterns, each open to requests without a session (a token authenticates them)."""
    from django.contrib.auth.decorators import login_not_required

    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback = login_not_required(pattern.callback)
    return [patterns, app_name, namespace]
