"""Sign-up, log-in (the site's and the admin's, both throttled), log-out, and that every page but
those needs a login."""

import pytest
from django.test import Client
from django.urls import resolve, reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_it_redirects_anonymous_visitors_to_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_it_signs_up_and_logs_in_a_new_user(client, django_user_model):
    response = client.post(
        reverse("signup"), {"username": "carol", "password1": PASSWORD, "password2": PASSWORD}, follow=True
    )
    assert django_user_model.objects.filter(username="carol").exists()
    assert response.context["user"].username == "carol"
    assert b"Your datasets" in response.content


def test_it_refuses_a_sign_up_with_mismatched_passwords(client, django_user_model):
    response = client.post(reverse("signup"), {"username": "dave", "password1": PASSWORD, "password2": "nope"})
    assert response.status_code == 200
    assert not django_user_model.objects.filter(username="dave").exists()
    assert b"didn" in response.content  # "The two password fields didn't match."


def test_it_logs_in_and_out(client, alice, clean_throttle):
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "javascript:alert(1)"])
def test_a_tampered_next_field_never_sends_the_user_off_site(client, alice, clean_throttle, target):
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD, "next": target})
    assert response.status_code == 302 and response.url == reverse("home")


def test_a_tampered_csrf_token_is_refused(alice):
    strict = Client(enforce_csrf_checks=True)
    strict.get(reverse("login"))
    response = strict.post(
        reverse("login"), {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": "x" * 64}
    )
    assert response.status_code == 403 and "_auth_user_id" not in strict.session


def test_it_rejects_a_wrong_password(client, alice, clean_throttle):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content


@pytest.fixture
def clean_throttle():
    from django.core.cache import cache

    from webapp.accounts.throttle import address_key, username_key

    keys = [username_key(name) for name in ("alice", "bob")] + [address_key("127.0.0.1")]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


def test_it_refuses_a_username_after_too_many_wrong_passwords(client, alice, bob, clean_throttle, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        assert client.post(reverse("login"), {"username": "alice", "password": "wrong"}).status_code == 200
    refused = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 429
    assert "Too many failed attempts" in refused.content.decode()
    assert client.get(reverse("home")).status_code == 302  # not logged in
    # Another username from the same address is not affected.
    assert client.post(reverse("login"), {"username": "bob", "password": PASSWORD}).status_code == 302


def test_a_successful_login_resets_the_count(client, alice, clean_throttle, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(2):
        client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert client.post(reverse("login"), {"username": "alice", "password": PASSWORD}).status_code == 302
    client.post(reverse("logout"))
    for _ in range(2):
        client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    # 4 failures in all, but a success came between: not locked.
    assert client.post(reverse("login"), {"username": "alice", "password": PASSWORD}).status_code == 302


@pytest.fixture
def staff_alice(alice):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    return alice


def test_the_admin_login_is_the_throttled_one(client, staff_alice, clean_throttle):
    from webapp.accounts.views import AdminLoginView

    assert resolve(reverse("admin:login")).func.view_class is AdminLoginView
    page = client.get(reverse("admin:login"))
    assert page.status_code == 200 and b'name="next" value="/admin/"' in page.content
    response = client.post(reverse("admin:login"), {"username": "alice", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302 and response.url == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_the_admin_login_refuses_a_username_after_five_wrong_passwords(client, staff_alice, clean_throttle, settings):
    settings.LOGIN_MAX_FAILURES = 5
    for _ in range(5):
        response = client.post(reverse("admin:login"), {"username": "alice", "password": "wrong"})
        assert response.status_code == 200 and b"correct username and password" in response.content
    refused = client.post(reverse("admin:login"), {"username": "alice", "password": PASSWORD, "next": "/admin/"})
    assert refused.status_code == 429
    assert "Too many failed attempts for this username" in refused.content.decode()
    assert client.get("/admin/").status_code == 302  # not logged in


def test_wrong_passwords_on_the_admin_count_toward_the_site_login(client, staff_alice, clean_throttle, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        client.post(reverse("admin:login"), {"username": "alice", "password": "wrong"})
    assert client.post(reverse("login"), {"username": "alice", "password": PASSWORD}).status_code == 429
