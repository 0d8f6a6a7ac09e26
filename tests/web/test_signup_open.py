"""SIGNUP_OPEN: open (the default), anyone may create an account; closed, the sign-up page says so,
no page links to it, and a post creates nobody."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = pytest.mark.django_db

NEW_USER = {"username": "newcomer", "password1": "a-long-new-password-7", "password2": "a-long-new-password-7"}
SIGNUP_LINK = f'href="{reverse("signup")}"'


def test_open_sign_up_offers_the_form_and_creates_the_account(client):
    assert SIGNUP_LINK in client.get(reverse("login")).content.decode()
    page = client.get(reverse("signup")).content.decode()
    assert 'name="password1"' in page and "closed" not in page
    response = client.post(reverse("signup"), NEW_USER)
    assert response.status_code == 302 and get_user_model().objects.filter(username="newcomer").exists()


def test_closed_sign_up_says_so_hides_its_links_and_creates_nobody(client, settings):
    settings.SIGNUP_OPEN = False
    login_page = client.get(reverse("login")).content.decode()
    assert SIGNUP_LINK not in login_page and 'name="username"' in login_page  # log-in still works
    response = client.get(reverse("signup"))
    page = response.content.decode()
    assert response.status_code == 200 and "Sign-up is closed" in page and 'name="password1"' not in page
    response = client.post(reverse("signup"), NEW_USER)
    assert response.status_code == 403 and "Sign-up is closed" in response.content.decode()
    assert not get_user_model().objects.filter(username="newcomer").exists()
