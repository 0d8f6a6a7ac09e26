"""`make run`'s first superuser: never admin/admin. Without ADMIN_PASSWORD it gets a random password,
printed once and kept only as a hash; ADMIN_PASSWORD, when set, is used and not printed."""

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def ensure_admin() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_the_first_superuser_gets_a_random_password_printed_once_and_stored_hashed(monkeypatch):
    monkeypatch.delenv("ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    output = ensure_admin()
    admin = get_user_model().objects.get(is_superuser=True)
    assert admin.username == "admin" and not admin.check_password("admin")
    password = re.search(r"shown only this once:\s+(\S+)\s", output).group(1)
    assert len(password) >= 16 and admin.check_password(password)
    assert password not in admin.password and admin.password.startswith(("pbkdf2_", "argon2", "bcrypt", "scrypt"))

    again = ensure_admin()  # the next `make run`: nothing created, nothing shown
    assert "exists already" in again and password not in again
    assert get_user_model().objects.filter(is_superuser=True).count() == 1


def test_a_password_given_in_admin_password_is_used_and_not_printed(monkeypatch):
    monkeypatch.setenv("ADMIN_USERNAME", "root")
    monkeypatch.setenv("ADMIN_PASSWORD", "a-long-operator-chosen-password")
    output = ensure_admin()
    admin = get_user_model().objects.get(is_superuser=True)
    assert admin.username == "root" and admin.check_password("a-long-operator-chosen-password")
    assert "a-long-operator-chosen-password" not in output
