"""Retention: `purge_files` deletes exactly the files nothing needs (orphan dataset files,
folders of deleted searches, old bundles, export leftovers) and nothing else; a dry run lists
the same and deletes nothing; links are never followed; the daily Celery task runs it."""

import io
import os
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.conftest import start_celery_worker
from tests.web.helpers import upload_dataset
from webapp.datasets.models import Dataset
from webapp.maintenance.management.commands.purge_files import human_size
from webapp.maintenance.services import Reason, files_purge
from webapp.searches import services as search_services
from webapp.searches.models import SearchJob

DAY = 24 * 3600


def age(path: Path, seconds: float) -> Path:
    """Set a file's (or a link's own) modification time to `seconds` ago."""
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp), follow_symlinks=False)
    return path


def write(path: Path, content: bytes = b"x" * 100, *, old: float = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return age(path, old) if old else path


def files_under(root: Path) -> set[str]:
    """Every file and link under root, relative, without following links."""
    found = set()
    for folder, folders, names in os.walk(root):
        for name in names + [d for d in folders if os.path.islink(os.path.join(folder, d))]:
            found.add(Path(folder, name).relative_to(root).as_posix())
    return found


def purge(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("purge_files", *args, stdout=out)
    return out.getvalue().splitlines()


def create_search(user, dataset) -> SearchJob:
    return search_services.search_create(
        user=user, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30
    )


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.RETENTION_DAYS = 30
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def tree(media, alice, alice_client, bob, breast_cancer_csv, django_capture_on_commit_callbacks):
    """A MEDIA_ROOT with real rows and files, and the exact paths retention must delete."""
    kept_dataset = upload_dataset(alice_client, breast_cancer_csv)
    age(media / kept_dataset.file.name, 90 * DAY)  # old, but a dataset uses it
    gone_dataset = upload_dataset(alice_client, breast_cancer_csv)
    gone_file = age(media / gone_dataset.file.name, 2 * 3600)
    # Deleting the row alone leaves the file behind, as a crash between the two would.
    Dataset.objects.filter(pk=gone_dataset.pk).delete()
    bob_dir = media / "datasets" / str(bob.pk)
    write(bob_dir / "uploading.csv")  # young: an upload may not have its row yet
    bob_orphan = write(bob_dir / "orphan.csv", old=2 * 3600)

    with django_capture_on_commit_callbacks(execute=False):
        deleted_job = create_search(alice, kept_dataset)
    deleted_dir = Path(deleted_job.artifacts_dir)
    write(deleted_dir / "trial_0.pt")
    write(deleted_dir / "bundles" / "trial_0.zip")
    SearchJob.objects.filter(pk=deleted_job.pk).delete()
    with django_capture_on_commit_callbacks(execute=False):
        job = create_search(alice, kept_dataset)
    job_dir = Path(job.artifacts_dir)
    write(job_dir / "trial_0.pt", old=400 * DAY)  # weights of an existing search: never deleted
    write(job_dir / "trial_0_final.pt", old=400 * DAY)
    bundles = job_dir / "bundles"
    old_bundle = write(bundles / "trial_0.zip", b"z" * 300, old=31 * DAY)
    write(bundles / "trial_1.zip", old=29 * DAY)
    stale_export = write(bundles / "tmpk2x9a_1q.zip", b"t" * 50, old=2 * 3600)
    write(bundles / "tmp5hd8w0zz.zip", old=10 * 60)  # an export still being written
    write(bundles / "notes.txt", old=400 * DAY)
    stale_bundle_part = write(bundles / ".part-x1y2.zip", b"p" * 40, old=2 * 3600)
    downloads = job_dir / "downloads"
    old_predictions = write(downloads / "trial_0-k1-predictions.csv", b"c" * 70, old=31 * DAY)
    write(downloads / "trial_1-k2-predictions.csv", old=29 * DAY)
    stale_part = write(downloads / ".part-ab12.csv", b"q" * 30, old=2 * 3600)
    write(downloads / ".part-cd34.csv", old=10 * 60)  # a download still being written
    write(media / "jobs" / "007" / "trial_0.pt")  # not a search's folder name: not ours
    write(media / "jobs" / "scratch" / "keep.bin")
    write(media / "elsewhere" / "keep.bin", old=400 * DAY)

    expected = {
        _rel(media, gone_file): gone_file.stat().st_size,
        _rel(media, bob_orphan): 100,
        f"jobs/{deleted_job.pk}": 200,
        _rel(media, old_bundle): 300,
        _rel(media, stale_export): 50,
        _rel(media, stale_bundle_part): 40,
        _rel(media, old_predictions): 70,
        _rel(media, stale_part): 30,
    }
    return expected


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _gone(expected: dict[str, int], before: set[str]) -> set[str]:
    return {path for path in before if any(path == e or path.startswith(e + "/") for e in expected)}


@pytest.mark.django_db
def test_a_dry_run_lists_exactly_the_garbage_and_deletes_nothing(media, tree):
    before, total = files_under(media), sum(tree.values())
    lines = purge("--dry-run")
    assert files_under(media) == before
    listed = [line.split(" ")[2] for line in lines if line.startswith("would delete ")]
    assert sorted(listed) == sorted(tree)
    assert lines[-1] == (
        f"Dry run: would delete {len(tree)} paths and free {human_size(total)} ({total} bytes). Nothing was deleted."
    )


@pytest.mark.django_db
def test_it_deletes_exactly_the_garbage_and_keeps_everything_else(media, tree):
    before, total = files_under(media), sum(tree.values())
    preview = files_purge(dry_run=True)
    lines = purge()
    assert files_under(media) == before - _gone(tree, before)
    assert sorted(line.split(" ")[1] for line in lines if line.startswith("deleted ")) == sorted(tree)
    assert lines[-1] == f"Deleted {len(tree)} paths and freed {human_size(total)} ({total} bytes)."
    assert (media / "jobs").is_dir() and media.is_dir()

    again = files_purge(dry_run=False)
    assert again.purged == () and again.failed == ()
    assert {item.path: item.size_bytes for item in preview.purged} == tree
    assert preview.to_dict()["bytes_freed"] == total


@pytest.mark.django_db
def test_the_retention_period_comes_from_settings(media, tree, settings):
    settings.RETENTION_DAYS = 28
    bundles = {item.path for item in files_purge(dry_run=True).purged if item.reason == Reason.OLD_BUNDLE}
    assert {path.rsplit("/", 1)[1] for path in bundles} == {"trial_0.zip", "trial_1.zip"}


@pytest.mark.django_db
def test_it_never_follows_a_link_out_of_media_root(
    media, tmp_path, alice, alice_client, breast_cancer_csv, django_capture_on_commit_callbacks
):
    outside = tmp_path / "outside"
    secret = write(outside / "secret.csv", old=400 * DAY)
    write(outside / "bundles" / "trial_0.zip", old=400 * DAY)
    write(outside / "job" / "trial_0.pt", old=400 * DAY)
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    with django_capture_on_commit_callbacks(execute=False):
        job = create_search(alice, dataset)
    user_dir = media / "datasets" / str(alice.pk)
    (user_dir / "linked.csv").symlink_to(secret)  # an orphan link: removed itself, never its target
    age(user_dir / "linked.csv", 2 * 3600)
    (media / "datasets" / "99999").symlink_to(outside)  # a user folder that is a link: not entered
    job_dir = Path(job.artifacts_dir)
    job_dir.mkdir(parents=True)
    (job_dir / "bundles").symlink_to(outside / "bundles")  # not entered, although the zip is old
    gone_job = media / "jobs" / str(job.pk + 1000)
    gone_job.mkdir()
    (gone_job / "escape").symlink_to(outside / "job")  # unlinked with the folder, not followed
    (media / "jobs" / str(job.pk + 1001)).symlink_to(outside / "job")  # a deleted search's folder as a link
    outside_files = files_under(outside)

    lines = purge()

    assert files_under(outside) == outside_files
    assert secret.read_bytes() == b"x" * 100
    deleted = sorted(line.split(" ")[1] for line in lines if line.startswith("deleted "))
    assert deleted == sorted([f"datasets/{alice.pk}/linked.csv", f"jobs/{job.pk + 1000}", f"jobs/{job.pk + 1001}"])
    assert not os.path.lexists(gone_job) and (media / "datasets" / "99999").is_symlink()
    assert (job_dir / "bundles").is_symlink()


def test_the_daily_task_is_registered_and_scheduled(settings):
    from webapp.celery import app

    app.loader.import_default_modules()  # what a worker and beat do at start
    assert "maintenance.purge_files" in app.tasks
    purge = [entry for entry in settings.CELERY_BEAT_SCHEDULE.values() if entry["task"] == "maintenance.purge_files"]
    assert [entry["schedule"] for entry in purge] == [DAY]
    assert app.conf.beat_schedule == settings.CELERY_BEAT_SCHEDULE


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_the_purge_task_on_its_media_root(media, tmp_path, monkeypatch, alice):
    from webapp.maintenance.tasks import purge_files

    orphan = write(media / "datasets" / str(alice.pk) / "orphan.csv", old=2 * 3600)
    young = write(media / "datasets" / str(alice.pk) / "young.csv")
    gone_job = write(media / "jobs" / "424242" / "trial_0.pt")
    queue = f"retention-test-{os.getpid()}"
    monkeypatch.setenv("CELERY_QUEUE_PREFIX", queue)  # only this worker (on this MEDIA_ROOT) takes the task
    worker = start_celery_worker("retention", tmp_path)
    try:
        purge_files.apply_async(queue=queue + "default")
        worker.wait_until(
            lambda: "maintenance.purge_files" in worker.log() and "succeeded" in worker.log(),
            timeout=60,
            what="done purging",
        )
    finally:
        worker.stop()
    assert not orphan.exists() and not gone_job.parent.exists()
    assert young.exists()
