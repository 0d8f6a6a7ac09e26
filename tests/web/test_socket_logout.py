"""A job page's WebSocket closes when its session logs out, on the real Redis channel layer; another
session of the same user keeps its socket."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import Client
from django.urls import reverse

from tests.web.helpers import communicator_for

pytestmark = pytest.mark.django_db(transaction=True)


async def next_close(communicator, *, timeout: float) -> dict:
    """The socket's close message, skipping other messages (a live event of the job may come first)."""
    while True:
        message = await communicator.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            return message


async def stays_open(communicator, *, seconds: float) -> bool:
    """No close message within ``seconds`` (other messages are read and skipped); the socket is left
    running (``receive_nothing`` does not cancel the application, as a timed-out receive would)."""
    for _ in range(20):
        if await communicator.receive_nothing(timeout=seconds):
            return True
        if (await communicator.receive_output())["type"] == "websocket.close":
            return False
    return True


def test_logging_out_closes_that_sessions_socket_only(alice, alice_client, queued_job):
    other_browser = Client()
    other_browser.force_login(alice)

    async def watch():
        leaving = communicator_for(alice_client, queued_job.pk)
        staying = communicator_for(other_browser, queued_job.pk)
        try:
            for communicator in (leaving, staying):
                connected, _ = await communicator.connect(timeout=10)
                assert connected
                assert (await communicator.receive_json_from(timeout=10))["type"] == "snapshot"
            response = await sync_to_async(alice_client.post)(reverse("logout"))
            assert response.status_code == 302
            assert await next_close(leaving, timeout=20) == {"type": "websocket.close", "code": 4401}
            assert await stays_open(staying, seconds=0.5)  # the other session's socket stays open
        finally:
            await leaving.disconnect()
            await staying.disconnect()

    async_to_sync(watch)()
