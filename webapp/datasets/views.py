"""Dataset pages: home (the user's datasets and searches), upload, detail with the search form."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

import nas_engine
from webapp.accounts import quotas
from webapp.datasets import selectors, services
from webapp.datasets.forms import DatasetUploadForm
from webapp.searches.forms import SearchJobForm
from webapp.searches.selectors import search_list


def home(request):
    return render(
        request,
        "datasets/home.html",
        {"datasets": selectors.dataset_list(user=request.user), "jobs": search_list(user=request.user)[:20]},
    )


def dataset_upload(request):
    if request.method != "POST":
        return _upload_page(request, DatasetUploadForm())
    form = DatasetUploadForm(request.POST, request.FILES, too_large=getattr(request, "upload_too_large", False))
    if not form.is_valid():
        return _upload_page(request, form, status=400)
    try:
        quotas.check_upload(user=request.user, size_bytes=form.cleaned_data["file"].size)
        dataset = services.dataset_create(
            owner=request.user, uploaded_file=form.cleaned_data["file"], name=form.cleaned_data["name"]
        )
    except (nas_engine.DatasetError, quotas.QuotaExceeded) as exc:
        form.add_error("file", str(exc))
        return _upload_page(request, form, status=400)
    messages.success(request, f"Uploaded {dataset.name}: {dataset.rows} rows, {dataset.column_count} columns.")
    return redirect("dataset_detail", pk=dataset.pk)


def _upload_page(request, form: DatasetUploadForm, status: int = 200):
    return render(
        request, "datasets/upload.html", {"form": form, "max_upload_mb": settings.MAX_UPLOAD_MB}, status=status
    )


def dataset_detail(request, pk: int):
    dataset = selectors.get_dataset_for_user(user=request.user, pk=pk)
    return render(request, "datasets/detail.html", {"dataset": dataset, "form": SearchJobForm(dataset=dataset)})


@require_POST
def dataset_delete(request, pk: int):
    dataset = selectors.get_dataset_for_user(user=request.user, pk=pk)
    services.dataset_delete(dataset=dataset)
    messages.success(request, f"Deleted {dataset.name}.")
    return redirect("home")
