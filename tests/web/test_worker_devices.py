"""Where the workers train: each real worker says its device when it starts and takes it back when
it stops; a worker told to use a GPU it does not have says why; and the upload form lets images be
bigger only where a worker trains on a GPU, saying why the limit is lower elsewhere."""

from __future__ import annotations

import uuid

import pytest
import torch
from django.urls import reverse

from tests.conftest import start_celery_worker
from tests.web.helpers import upload_dataset
from webapp.datasets.models import Dataset
from webapp.searches import workers

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_queues(settings, monkeypatch):
    """A queue prefix of this test's own: its workers take none of the suite's tasks, and the
    registry of devices it reads is its own."""
    prefix = f"devices-{uuid.uuid4().hex[:8]}-"
    monkeypatch.setenv("CELERY_QUEUE_PREFIX", prefix)
    settings.CELERY_QUEUE_PREFIX = prefix
    settings.NAS_QUEUES = {role: prefix + role for role in settings.NAS_QUEUES}
    yield prefix
    for name in workers.worker_devices():
        workers.withdraw(name)


@pytest.mark.slow
def test_a_worker_announces_where_it_trains_and_takes_it_back_when_it_stops(own_queues, monkeypatch, tmp_path):
    monkeypatch.setenv("NAS_DEVICE", "cpu")
    worker = start_celery_worker("devices", tmp_path)
    try:
        lines = workers.worker_devices()
        assert len(lines) == 1
        ((name, line),) = lines.items()
        assert name.startswith("devices-") and line["device"] == "cpu"
        assert set(line["speed"]) == {"mlp", "cnn"} and all(factor > 0 for factor in line["speed"].values())
        assert f"{own_queues}search" in line["queues"] and f"{own_queues}trials" in line["queues"]
        assert f"Worker {name} trains on cpu" in worker.log()
        assert workers.gpu_workers() == []
    finally:
        worker.stop()
    assert workers.worker_devices() == {}


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_worker_told_to_train_on_a_gpu_it_lacks_says_why(own_queues, monkeypatch, tmp_path):
    monkeypatch.setenv("NAS_DEVICE", "cuda")
    worker = start_celery_worker("no-gpu", tmp_path)
    try:
        assert "cannot train: NAS_DEVICE=cuda asks for a GPU, but torch" in worker.log()
        assert workers.worker_devices() == {}  # it announces nothing it cannot do
    finally:
        worker.stop()


def test_without_a_gpu_worker_images_are_at_most_64_and_the_page_says_why(own_queues, alice_client, digits_zip):
    page = alice_client.get(reverse("dataset_upload")).content.decode()
    assert "stored at 8 to 32 pixels a side" in page and "up to 64 if you choose: its workers" in page
    assert "train on the CPU, where bigger images train much slower" in page  # the field's help
    with open(digits_zip, "rb") as handle:
        response = alice_client.post(reverse("dataset_upload"), {"file": handle, "image_size": "96"})
    assert response.status_code == 400 and response.context["form"].errors["image_size"]
    assert not Dataset.objects.exists()


def test_with_a_gpu_worker_images_may_be_96_pixels_a_side(own_queues, alice_client, digits_zip):
    # What a worker on a GPU machine announces when it starts (none is lent here to start one).
    workers.announce("gpu-worker@host", device="cuda (NVIDIA H100 80GB HBM3)", queues=[f"{own_queues}trials-gpu"])
    assert workers.gpu_workers() == ["gpu-worker@host"]
    page = alice_client.get(reverse("dataset_upload")).content.decode()
    assert (
        "stored at 8 to 64 pixels a side" in page
        and "up to 96 if you choose: this server's workers train on a GPU" in page
    )
    with open(digits_zip, "rb") as handle:
        response = alice_client.post(reverse("dataset_upload"), {"file": handle, "image_size": "96"})
    assert response.status_code == 302
    dataset = Dataset.objects.get()
    assert (dataset.image["height"], dataset.image["width"]) == (96, 96)
    with open(digits_zip, "rb") as handle:
        response = alice_client.post(reverse("dataset_upload"), {"file": handle, "image_size": "97"})
    assert response.status_code == 400 and response.context["form"].errors["image_size"]


def test_the_estimate_is_priced_at_the_speed_of_the_workers_that_train(own_queues, alice_client, breast_cancer_csv):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    settings = {"target": "diagnosis", "task": "auto", "budget_seconds": 60, "cost_objective": "params",
                "strategy": "tpe", "space": "auto", "fidelity": "none", "seed": 0}  # fmt: skip

    def estimate() -> dict:
        return alice_client.get(reverse("search_estimate", args=[dataset.pk]), settings).json()

    reference = estimate()  # no worker has said how fast it is: the reference machine's speed
    workers.announce("slow@host", device="cpu", queues=[f"{own_queues}trials"], speed={"mlp": 0.25, "cnn": 0.25})
    slow = estimate()
    assert slow["seconds_per_trial"] > 3 * reference["seconds_per_trial"] and slow["trials"] < reference["trials"]
    assert workers.training_speed("mlp", image=False) == 0.25
    # A GPU worker prices image searches (they go to it); tables are priced by the median worker.
    workers.announce("gpu@host", device="cuda (NVIDIA H100)", queues=[f"{own_queues}trials-gpu"], speed={"cnn": 40.0})
    workers.announce("other@host", device="cpu", queues=[f"{own_queues}trials"], speed={"mlp": 1.0, "cnn": 1.0})
    assert workers.training_speed("cnn", image=True) == 40.0
    assert workers.training_speed("mlp", image=False) == 1.0
    # A worker that only takes the quick queue trains nothing: its speed prices no search.
    workers.announce("quick@host", device="cpu", queues=[f"{own_queues}default"], speed={"mlp": 9.0, "cnn": 9.0})
    workers.announce("quick2@host", device="cpu", queues=[f"{own_queues}default"], speed={"mlp": 9.0, "cnn": 9.0})
    assert workers.training_speed("mlp", image=False) == 1.0
