"""Coming back to searches: a name and notes, the dataset page's leaderboard of its searches (one
table per target and metric, best first), running a search again as it was or with changes, and
deleting one's own (confirmed first; another user's answers 404: test_ownership)."""

import pytest
from django.urls import reverse

from webapp.searches import services
from webapp.searches.models import SearchJob, Trial

pytestmark = pytest.mark.django_db


def trial(job, number: int, score: float, params: int) -> Trial:
    return Trial.objects.create(
        job=job, number=number, status="completed", architecture={"space": "mlp"}, arch_hash=str(number),
        score=score, params=params, flops=1, size_bytes=4, latency_ms=0.5,
    )  # fmt: skip


@pytest.fixture
def two_searches(alice, queued_job, django_capture_on_commit_callbacks) -> tuple[SearchJob, SearchJob]:
    with django_capture_on_commit_callbacks(execute=False):
        second = services.search_create(
            user=alice, dataset=queued_job.dataset, target="diagnosis", task="classification", budget_seconds=60,
            name="wider", notes="more layers", strategy="random",
        )  # fmt: skip
    trial(queued_job, 0, 0.91, 1000)
    trial(second, 0, 0.95, 5000)
    trial(second, 1, 0.93, 100)
    return queued_job, second


def test_the_leaderboard_ranks_a_datasets_searches_by_their_best_score(alice_client, two_searches):
    first, second = two_searches
    page = alice_client.get(reverse("dataset_detail", args=[first.dataset.pk]))
    boards = page.context["leaderboard"]
    assert [(b["target"], b["metric"]) for b in boards] == [("diagnosis", "accuracy")]
    ranked = boards[0]["jobs"]
    assert [job.pk for job in ranked] == [second.pk, first.pk]
    assert ranked[0].best == pytest.approx(0.95) and ranked[0].best_trial.params == 5000 and ranked[0].models == 2
    html = page.content.decode()
    assert "wider (#" in html and "more layers" in html and "Random search" in html and "0.9500" in html


def test_a_loss_metric_ranks_the_smallest_first(alice, alice_client, queued_job, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        other = services.search_create(
            user=alice, dataset=queued_job.dataset, target="diagnosis", task="classification", budget_seconds=30,
            metric="log_loss",
        )  # fmt: skip
    trial(other, 0, -0.30, 10)  # a score is minus the loss
    trial(queued_job, 0, 0.9, 10)
    boards = alice_client.get(reverse("dataset_detail", args=[queued_job.dataset.pk])).context["leaderboard"]
    assert {b["metric"] for b in boards} == {"accuracy", "log loss"}
    loss = next(b for b in boards if b["metric"] == "log loss")
    assert loss["jobs"][0].best == pytest.approx(0.30)


def test_run_it_again_copies_the_settings_for_its_owner(
    settings, alice, alice_client, two_searches, django_capture_on_commit_callbacks
):
    settings.QUOTA_MAX_CONCURRENT_JOBS = 5
    _, second = two_searches
    with django_capture_on_commit_callbacks(execute=False):
        response = alice_client.post(reverse("search_rerun", args=[second.pk]))
    rerun = SearchJob.objects.latest("pk")
    assert response.status_code == 302 and response.url == reverse("search_detail", args=[rerun.pk])
    assert rerun.rerun_of == second and rerun.owner == alice and rerun.status == "queued"
    assert (rerun.name, rerun.notes, rerun.strategy, rerun.budget_seconds) == ("wider", "more layers", "random", 60)


def test_run_it_again_respects_the_quota(settings, alice_client, two_searches):
    settings.QUOTA_MAX_CONCURRENT_JOBS = 2  # both are queued
    response = alice_client.post(reverse("search_rerun", args=[two_searches[1].pk]), follow=True)
    assert SearchJob.objects.count() == 2 and "your limit is 2" in response.content.decode()


def test_run_again_with_changes_fills_the_form_with_the_earlier_settings(alice_client, two_searches):
    _, second = two_searches
    second.split, second.split_ratio, second.max_size_bytes = "group:mean radius", "70/15/15", 20 * 1024
    second.objectives, second.column_types = ["score", "latency_ms", "params"], ["mean texture=categorical"]
    second.save()
    page = alice_client.get(reverse("dataset_detail", args=[second.dataset.pk]) + f"?from={second.pk}")
    form = page.context["form"]
    assert page.context["rerun_of"] == second and "rerun-of" in page.content.decode()
    values = {name: form[name].value() for name in form.fields}
    assert values["strategy"] == "random" and values["budget_seconds"] == 60 and values["name"] == "wider (changed)"
    assert (values["split_kind"], values["split_column"], values["split_ratio"]) == ("group", "mean radius", "70/15/15")
    assert (values["cost_objective"], values["third_objective"], values["max_size_kb"]) == ("latency_ms", "params", 20)
    index = form.type_columns.index("mean texture")
    assert values[f"type_{index}"] == "categorical"


def test_another_users_job_does_not_fill_the_form(bob, bob_client, alice_client, two_searches, breast_cancer_csv):
    from tests.web.helpers import upload_dataset

    bobs = upload_dataset(bob_client, breast_cancer_csv)
    page = bob_client.get(reverse("dataset_detail", args=[bobs.pk]) + f"?from={two_searches[1].pk}")
    assert page.context["rerun_of"] is None and page.context["leaderboard"] == []


def test_the_job_header_names_the_network_kind_and_the_strategy_in_words(alice_client, two_searches):
    first, second = two_searches  # the first trial of each is made up: the header must not read it
    page = alice_client.get(reverse("search_detail", args=[second.pk])).content.decode()
    assert (
        "A multi-layer perceptron (with optional periodic embeddings and a TabM-style ensemble) (chosen from the data)"
        in page
    )
    assert "Random search" in page and "wider (#" in page and "more layers" in page
    first.space, first.strategy = "trees", "tpe"
    first.save()
    page = alice_client.get(reverse("search_detail", args=[first.pk])).content.decode()
    assert "Gradient-boosted decision trees ·" in page and "Bayesian optimisation (TPE)" in page


def test_an_image_search_is_said_to_search_convolutional_networks(alice, alice_client, digits_zip):
    from tests.web.helpers import upload_dataset

    dataset = upload_dataset(alice_client, digits_zip)
    job = SearchJob(owner=alice, dataset=dataset, target="label", task="classification", space="auto")
    assert job.space_label == "A convolutional network (chosen from the data)"
