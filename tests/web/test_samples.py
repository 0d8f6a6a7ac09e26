"""The built-in samples: a new account starts from a table or a set of images with one click; each
becomes the user's own dataset, made as an upload of the same file would be, ready to search."""

import pytest
from django.urls import reverse

from webapp.datasets.models import Dataset
from webapp.searches.forms import SearchJobForm

pytestmark = pytest.mark.django_db


def test_a_new_account_is_offered_the_samples(alice_client):
    page = alice_client.get(reverse("home")).content.decode()
    assert 'data-sample="breast-cancer"' in page and 'data-sample="digits"' in page


@pytest.mark.parametrize(
    ("key", "rows", "target", "classes"), [("breast-cancer", 569, "diagnosis", 2), ("digits", 1797, "label", 10)]
)
def test_a_sample_becomes_the_users_dataset_ready_to_search(alice, alice_client, key, rows, target, classes):
    response = alice_client.post(reverse("sample_create", args=[key]))
    dataset = Dataset.objects.get(owner=alice)
    assert response.status_code == 302 and response.url.startswith(reverse("dataset_detail", args=[dataset.pk]))
    assert dataset.rows == rows and dataset.column(target)["unique"] == classes
    page = alice_client.get(response.url)
    form = page.context["form"]
    assert form["target"].value() == target
    data = {name: form[name].value() for name in form.fields}
    data = {name: value for name, value in data.items() if value not in (None, "")}
    bound = SearchJobForm(data | {"budget_seconds": 30}, dataset=dataset)
    assert bound.is_valid(), bound.errors
    assert bound.cleaned_data["task"] == "classification"
    if key == "digits":
        assert [name for name, _ in dataset.image["classes"]] == [str(i) for i in range(10)]
        assert dataset.image["width"] == 8


def test_a_sample_is_a_copy_for_each_user(alice, bob, alice_client, bob_client):
    alice_client.post(reverse("sample_create", args=["breast-cancer"]))
    bob_client.post(reverse("sample_create", args=["breast-cancer"]))
    assert Dataset.objects.filter(owner=alice).count() == Dataset.objects.filter(owner=bob).count() == 1


def test_an_unknown_sample_answers_404_and_makes_nothing(alice_client):
    assert alice_client.post(reverse("sample_create", args=["nope"])).status_code == 404
    assert alice_client.get(reverse("sample_create", args=["digits"])).status_code == 405
    assert not Dataset.objects.exists()
