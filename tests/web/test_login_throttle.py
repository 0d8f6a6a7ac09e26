"""Log-in throttling counts every attempt before the password is checked, per username and per
client address: parallel guesses cannot outrun the count, spraying usernames stops at the address
limit, and behind a trusted proxy the address comes from X-Forwarded-For (only then)."""

import threading
import uuid

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.cache import cache
from django.db import connections
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD
from webapp.accounts.throttle import address_key, username_key

pytestmark = pytest.mark.django_db


class TenthPBKDF2Hasher(PBKDF2PasswordHasher):
    """Django's hasher with a tenth of its rounds: a password check still takes a while (so guesses
    sent at once overlap, as they would against a real server), but not a second."""

    iterations = PBKDF2PasswordHasher.iterations // 10


@pytest.fixture(autouse=True)
def tenth_hashes(settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.TenthPBKDF2Hasher"]


@pytest.fixture
def fresh():
    """Usernames and addresses no other test (or earlier run, within the lockout) has counted."""
    used: list[str] = []

    def make(kind: str) -> str:
        tag = uuid.uuid4().int
        value = f"203.0.{tag % 250}.{tag // 250 % 250}" if kind == "address" else f"user-{tag:x}"[:30]
        used.append(value)
        return value

    yield make
    cache.delete_many([address_key(v) for v in used] + [username_key(v) for v in used])


def log_in(client, username, password="wrong", **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra).status_code


def test_parallel_guesses_are_counted_before_the_password_is_checked(fresh, settings):
    settings.LOGIN_MAX_FAILURES = 3
    username, address = fresh("user"), fresh("address")
    start, statuses = threading.Barrier(10), []

    def guess() -> None:
        client = Client(REMOTE_ADDR=address)
        start.wait()
        try:
            statuses.append(log_in(client, username))
        finally:
            connections.close_all()  # this thread's database connection

    threads = [threading.Thread(target=guess) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Exactly three guesses had their password checked; the others were refused before it.
    assert sorted(statuses) == [200] * 3 + [429] * 7


def test_spraying_usernames_from_one_address_stops_at_the_address_limit(alice, fresh, settings):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    address, elsewhere = fresh("address"), fresh("address")
    client = Client(REMOTE_ADDR=address)
    for _ in range(3):
        assert log_in(client, fresh("user")) == 200  # a different username each time
    assert log_in(client, "alice", PASSWORD) == 429  # even the right password: the address is refused
    assert client.get(reverse("home")).status_code == 302
    assert log_in(Client(REMOTE_ADDR=elsewhere), "alice", PASSWORD) == 302  # another address is not
    cache.delete(username_key("alice"))


def test_the_address_comes_from_x_forwarded_for_only_behind_a_trusted_proxy(fresh, settings):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    proxy, client_a, client_b = fresh("address"), fresh("address"), fresh("address")
    behind_proxy = Client(REMOTE_ADDR=proxy)

    # No TRUSTED_PROXY_COUNT: the header is ignored, a forged one escapes nothing.
    for forged in (client_a, client_b):
        assert log_in(behind_proxy, fresh("user"), HTTP_X_FORWARDED_FOR=forged) == 200
    assert log_in(behind_proxy, fresh("user"), HTTP_X_FORWARDED_FOR=fresh("address")) == 429

    # One trusted proxy: its X-Forwarded-For entry (the rightmost) is the client.
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(2):
        assert log_in(behind_proxy, fresh("user"), HTTP_X_FORWARDED_FOR=client_a) == 200
    assert log_in(behind_proxy, fresh("user"), HTTP_X_FORWARDED_FOR=client_a) == 429
    # What client A writes into the header itself does not make it someone else.
    assert log_in(behind_proxy, fresh("user"), HTTP_X_FORWARDED_FOR=f"{client_b}, {client_a}") == 429
    # Another client behind the same proxy has its own count.
    assert log_in(behind_proxy, fresh("user"), HTTP_X_FORWARDED_FOR=client_b) == 200
