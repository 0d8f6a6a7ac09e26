"""Writes for datasets: create from an upload (validated and profiled), delete."""

import logging
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.db import transaction

import nas_engine
from webapp.datasets.isolation import convert_image_upload_isolated
from webapp.datasets.models import Dataset
from webapp.searches import workers

logger = logging.getLogger(__name__)


def dataset_create(
    *, owner, uploaded_file, name: str = "", image_size: int | None = None, gpu: bool | None = None
) -> Dataset:
    """Profile an uploaded CSV (or convert an image archive) and keep it, or raise DatasetError and
    keep nothing.

    An image upload (.zip / .tar.gz of class folders, or .npz) is decoded once into the engine's
    image set (pixel columns + ``label``), which every later step reads like a table.

    Args:
        owner: the user who uploads.
        uploaded_file: a Django UploadedFile already streamed to a temporary file on disk.
        name: a display name; the file name when empty.
        image_size: the square side images are resized to; None: from the images (their median side,
            8 to 32, or to 64 where a worker trains on a GPU: ``images.side_limits``). A CSV ignores it.
        gpu: whether the site's workers train on a GPU (bigger images allowed); None: ask them
            (``workers.gpu_workers``).

    Raises:
        nas_engine.DatasetError: the file is not data the engine can use; the message says why.
    """
    source = Path(uploaded_file.temporary_file_path())
    images = nas_engine.is_image_upload(uploaded_file.name)
    relative = Path("datasets") / str(owner.pk) / f"{uuid.uuid4().hex}{'.npz' if images else '.csv'}"
    destination = Path(settings.MEDIA_ROOT) / relative
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        if images:
            # In a child with capped memory: a hostile archive must not grow the web process.
            image_profile = convert_image_upload_isolated(
                source,
                destination,
                filename=uploaded_file.name,
                limits=archive_limits(),
                size=image_size,
                memory_mb=settings.IMAGE_CONVERT_MEMORY_MB,
                gpu=bool(workers.gpu_workers()) if gpu is None else gpu,
            )
            # The image set's columns are pixels the engine wrote itself, bounded by its own size cap.
            profile = nas_engine.profile_csv(destination, limits=nas_engine.CsvLimits(max_columns=None))
            stored = profile.to_dict() | {"image": image_profile}
        else:
            profile = nas_engine.profile_csv(source, limits=csv_limits())
            stored = profile.to_dict()
            shutil.copyfile(source, destination)  # inside the try: a full disk must not leave half a file
        with transaction.atomic():
            return Dataset.objects.create(
                owner=owner,
                name=(name or uploaded_file.name)[:200],
                original_filename=uploaded_file.name[:255],
                file=str(relative),
                size_bytes=destination.stat().st_size,
                rows=profile.rows,
                column_count=len(profile.columns),
                profile=stored,
            )
    except BaseException:
        destination.unlink(missing_ok=True)
        raise


def dataset_create_from_file(*, owner, path: Path, name: str = "") -> Dataset:
    """``dataset_create`` for a file already on this machine (a built-in sample, a benchmark's
    table), taken through a temporary upload exactly as the upload page takes a file."""
    from django.core.files.uploadedfile import TemporaryUploadedFile

    upload = TemporaryUploadedFile(path.name, "application/octet-stream", path.stat().st_size, "utf-8")
    try:
        with open(path, "rb") as source:
            shutil.copyfileobj(source, upload)
        upload.flush()
        return dataset_create(owner=owner, uploaded_file=upload, name=name)
    finally:
        upload.close()


def archive_limits() -> nas_engine.ArchiveLimits:
    """The limits an uploaded image archive must respect, from settings (IMAGE_MAX_*)."""
    return nas_engine.ArchiveLimits(
        max_files=settings.IMAGE_MAX_FILES,
        max_total_bytes=settings.IMAGE_MAX_TOTAL_MB * 1024 * 1024,
        max_file_bytes=settings.IMAGE_MAX_FILE_MB * 1024 * 1024,
    )


def csv_limits() -> nas_engine.CsvLimits:
    """The limits an uploaded CSV must respect, from settings (CSV_MAX_*)."""
    return nas_engine.CsvLimits(
        max_columns=settings.CSV_MAX_COLUMNS,
        max_rows=settings.CSV_MAX_ROWS,
        max_field_chars=settings.CSV_MAX_FIELD_CHARS,
        max_name_chars=settings.CSV_MAX_NAME_CHARS,
    )


def dataset_delete(*, dataset: Dataset) -> None:
    """Delete the row and its jobs first (each one cancelled, its files removed after commit, as
    ``search_delete`` does), then the file, so no row ever points at nothing."""
    from webapp.searches.services import search_delete

    path = Path(dataset.file.path)
    with transaction.atomic():
        for job in dataset.search_jobs.all():
            search_delete(job=job)
        dataset.delete()
    transaction.on_commit(lambda: path.unlink(missing_ok=True))
