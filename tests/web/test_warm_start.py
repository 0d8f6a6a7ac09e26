"""Warm start from the web form: only the owner's finished searches of data with the same columns
are offered, and a warm-started job on a real worker reuses the earlier job's supernet."""

import pytest
from django.urls import reverse

from tests.web.helpers import upload_dataset
from tests.web.test_search_flow import wait_until_ended
from webapp.searches import services
from webapp.searches.forms import SearchJobForm
from webapp.searches.models import SearchJob

FORM = {
    "target": "diagnosis", "task": "auto", "budget_seconds": 20, "max_trials": 3, "strategy": "spos",
    "seed": 0, "cost_objective": "params", "space": "auto", "fidelity": "none",
}  # fmt: skip


def finished_job(user, dataset, target):
    job = services.search_create(user=user, dataset=dataset, target=target, task="classification", budget_seconds=30)
    SearchJob.objects.filter(pk=job.pk).update(status=SearchJob.Status.FINISHED)
    return job


@pytest.mark.django_db
def test_only_own_finished_searches_of_the_same_columns_are_offered(
    alice, bob, alice_client, bob_client, breast_cancer_csv, diabetes_csv, django_capture_on_commit_callbacks
):
    cancer = upload_dataset(alice_client, breast_cancer_csv)
    cancer_again = upload_dataset(alice_client, breast_cancer_csv)  # another upload, the same columns
    diabetes = upload_dataset(alice_client, diabetes_csv)
    bobs = upload_dataset(bob_client, breast_cancer_csv)
    with django_capture_on_commit_callbacks(execute=False):
        mine = finished_job(alice, cancer, "diagnosis")
        other_columns = finished_job(alice, diabetes, "sex")
        theirs = finished_job(bob, bobs, "diagnosis")
        running = services.search_create(
            user=alice, dataset=cancer, target="diagnosis", task="classification", budget_seconds=30
        )
    offered = {value for value, _ in SearchJobForm(dataset=cancer_again).fields["warm_start_from"].choices}
    assert offered == {"", str(mine.pk)}
    assert str(other_columns.pk) not in offered and str(theirs.pk) not in offered and str(running.pk) not in offered

    url = reverse("search_create", args=[cancer_again.pk])
    response = alice_client.post(url, FORM | {"warm_start_from": theirs.pk})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    renamed = SearchJob.objects.filter(pk=mine.pk)
    renamed.update(target="mean radius")
    response = alice_client.post(url, FORM | {"warm_start_from": mine.pk})
    assert response.status_code == 400 and "predicted &#x27;mean radius&#x27;" in response.content.decode()
    assert not SearchJob.objects.filter(warm_start_from=mine).exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_warm_started_search_reuses_the_earlier_supernet(celery_worker_process, alice_client, breast_cancer_csv):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    alice_client.post(reverse("search_create", args=[dataset.pk]), FORM)
    first = wait_until_ended(SearchJob.objects.latest("pk"), timeout=180)
    assert first.status == "finished", first.error

    response = alice_client.post(reverse("search_create", args=[dataset.pk]), FORM | {"warm_start_from": first.pk})
    assert response.status_code == 302
    second = wait_until_ended(SearchJob.objects.latest("pk"), timeout=180)
    assert second.status == "finished", second.error
    assert second.warm_start_from == first
    log = list(second.log_entries.values_list("message", flat=True))
    assert any("warm-started from an earlier search's supernet" in line for line in log), log
    assert not any("warm-started" in line for line in first.log_entries.values_list("message", flat=True))
    shortlisted = second.trials.filter(metrics__has_key="one_shot_score").first()
    assert shortlisted is not None
    trial_page = alice_client.get(reverse("trial_detail", args=[second.pk, shortlisted.number])).content.decode()
    assert f"predicted by the supernet {shortlisted.metrics['one_shot_score']:.4f}" in trial_page
    page = alice_client.get(reverse("search_detail", args=[second.pk])).content.decode()
    assert f'warm-started from <a href="{reverse("search_detail", args=[first.pk])}">search #{first.pk}</a>' in page
