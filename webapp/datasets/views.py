"""Dataset pages: home (the user's datasets and searches), upload, detail with the profile and the
search form."""

from django.conf import settings
from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

import nas_engine
from nas_engine.images import side_limits
from webapp.accounts import quotas
from webapp.datasets import samples, selectors, services
from webapp.datasets.forms import DatasetUploadForm
from webapp.datasets.models import Dataset
from webapp.searches import selectors as search_selectors
from webapp.searches import workers
from webapp.searches.forms import SearchJobForm


def home(request):
    datasets = selectors.dataset_page(user=request.user, number=request.GET.get("datasets"))
    jobs = selectors.search_summary_page(user=request.user, number=request.GET.get("jobs"))
    return render(
        request,
        "datasets/home.html",
        {
            "datasets": datasets,
            "jobs": jobs,
            "dataset_pager": _pager(request, "datasets", datasets),
            "samples": list(samples.SAMPLES.values()),
            "job_pager": _pager(request, "jobs", jobs),
        },
    )


def _pager(request, param: str, page) -> dict:
    """Links to the previous and next page of one list, keeping the other list's page in the URL."""

    def url(number: int) -> str:
        query = request.GET.copy()
        query[param] = str(number)
        return "?" + query.urlencode()

    return {
        "page": page,
        "previous": url(page.previous_page_number()) if page.has_previous() else None,
        "next": url(page.next_page_number()) if page.has_next() else None,
    }


def dataset_upload(request):
    """The upload page. A plain form post redirects to the new dataset; the page's script sends
    ``Accept: application/json`` (to show progress) and gets the same outcome as JSON."""
    if request.method != "POST":
        return _upload_page(request, DatasetUploadForm(gpu=_gpu_site()))
    dataset, form = create_from_upload(request)
    if dataset is None:
        return _upload_failed(request, form)
    messages.success(request, f"Uploaded {dataset.name}: {_contents(dataset)}.")
    url = reverse("dataset_detail", args=[dataset.pk])
    if _wants_json(request):
        return JsonResponse({"redirect": url}, status=201)
    return redirect(url)


def create_from_upload(request) -> tuple[Dataset | None, DatasetUploadForm]:
    """The dataset a request's upload (``file``, ``name``, ``image_size``) makes for its user, within
    their quotas; None, with the form's errors saying why, when it makes none (nothing is kept).
    The upload page and the API both create datasets here."""
    gpu = _gpu_site()
    data, files = request.POST, request.FILES  # parsing the body first tells whether the file was too large
    form = DatasetUploadForm(data, files, too_large=getattr(request, "upload_too_large", False), gpu=gpu)
    if not form.is_valid():
        return None, form
    try:
        quotas.check_upload(user=request.user, size_bytes=form.cleaned_data["file"].size)
        dataset = services.dataset_create(
            owner=request.user,
            uploaded_file=form.cleaned_data["file"],
            name=form.cleaned_data["name"],
            image_size=form.cleaned_data["image_size"],
            gpu=gpu,
        )
    except (nas_engine.DatasetError, quotas.QuotaExceeded) as exc:
        form.add_error("file", str(exc))
        return None, form
    return dataset, form


def _gpu_site() -> bool:
    """A worker of this site trains on a GPU (it said so when it started: ``workers.gpu_workers``)."""
    return bool(workers.gpu_workers())


def _target_asked(request, dataset: Dataset) -> dict | None:
    """``?target=COLUMN`` picks the form's target (a sample names its own)."""
    target = request.GET.get("target", "")
    return {"target": target} if target in dataset.column_names else None


def _contents(dataset) -> str:
    if dataset.image:
        return f"{dataset.rows} images in {len(dataset.image['classes'])} classes"
    return f"{dataset.rows} rows, {dataset.column_count} columns"


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _upload_failed(request, form: DatasetUploadForm):
    if _wants_json(request):
        return JsonResponse({"errors": form.error_lists()}, status=400)
    return _upload_page(request, form, status=400)


def _upload_page(request, form: DatasetUploadForm, status: int = 200):
    limits = {
        "csv_rows": settings.CSV_MAX_ROWS,
        "csv_columns": settings.CSV_MAX_COLUMNS,
        "image_files": settings.IMAGE_MAX_FILES,
        "image_total_mb": settings.IMAGE_MAX_TOTAL_MB,
        "image_file_mb": settings.IMAGE_MAX_FILE_MB,
    }
    limits["image_side"], limits["image_chosen_side"] = side_limits(gpu=form.gpu)
    limits["gpu"] = form.gpu
    context = {
        "form": form,
        "max_upload_mb": settings.MAX_UPLOAD_MB,
        "max_upload_bytes": settings.MAX_UPLOAD_BYTES,
        "limits": limits,
    }
    return render(request, "datasets/upload.html", context, status=status)


def dataset_detail(request, pk: int):
    """The profile, the leaderboard of the dataset's searches and the search form; ``?from=JOB``
    fills the form with that search's settings, to run it again with changes."""
    dataset = selectors.get_dataset_for_user(user=request.user, pk=pk)
    earlier = None
    if (from_job := request.GET.get("from", "")).isdigit():
        earlier = dataset.search_jobs.filter(pk=int(from_job)).first()
    initial = SearchJobForm.initial_from(earlier) if earlier is not None else None
    context = {
        "dataset": dataset,
        "form": SearchJobForm(initial=initial or _target_asked(request, dataset), dataset=dataset),
        "rerun_of": earlier,
        "leaderboard": search_selectors.dataset_leaderboard(dataset=dataset),
    }
    return render(request, "datasets/detail.html", context)


@require_http_methods(["GET", "POST"])
def dataset_delete(request, pk: int):
    """GET (or a POST without ``confirm``) asks first, saying what goes with the dataset: its
    searches and their models. Only the confirmation page's POST deletes."""
    dataset = selectors.get_dataset_for_user(user=request.user, pk=pk)
    if request.method != "POST" or request.POST.get("confirm") != "yes":
        context = {"dataset": dataset} | selectors.dataset_deletion(dataset=dataset)
        return render(request, "datasets/delete.html", context)
    services.dataset_delete(dataset=dataset)
    messages.success(request, f"Deleted {dataset.name}.")
    return redirect("home")


@require_POST
def sample_create(request, key: str):
    """Give the user a copy of a built-in sample dataset and open it, ready to search."""
    if key not in samples.SAMPLES:
        raise Http404("No such sample.")
    dataset = samples.sample_create(owner=request.user, key=key)
    messages.success(request, f"Added {dataset.name}: {_contents(dataset)}. Pick your limits and start a search.")
    return redirect(reverse("dataset_detail", args=[dataset.pk]) + f"?target={samples.SAMPLES[key].target}")
