"""A request body over the upload limit is refused with 413 before it is read (webapp/bodylimit.py):
against real daphne, an anonymous client that announces a huge body or streams a chunked one past
the limit gets its answer at once, while the server has kept nothing; a normal upload still works.

The daphne of this module runs with MAX_UPLOAD_MB=1, so the body limit (the upload limit plus 1 MB
for the form's other fields) is 2 MB and the chunked cases stay small."""

import asyncio
import http.client
import re
import select
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from django.conf import settings
from django.core.signals import request_started
from django.test import Client
from django.urls import reverse

from tests.conftest import ROOT, _child_env, _free_port
from tests.web.helpers import stored_dataset_files, upload
from webapp.datasets.models import Dataset

pytestmark = pytest.mark.django_db(transaction=True)

UPLOAD_MB = 1
LIMIT = UPLOAD_MB * 2**20 + settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # MAX_UPLOAD_BYTES + the rest of a form
HUGE = 50 * 2**30  # announced, never sent: 50 GB


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    """(host, port) of daphne serving the app on the test database with a 1 MB upload limit."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("logs") / "daphne-body-limit.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "webapp.asgi:application"],
        cwd=ROOT,
        env=_child_env() | {"MAX_UPLOAD_MB": str(UPLOAD_MB)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    deadline = time.monotonic() + 60
    while not answers():
        assert process.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")[-4000:]
        time.sleep(0.2)
    yield "127.0.0.1", port
    process.terminate()
    process.wait(timeout=20)
    log.close()


def read_response(sock: socket.socket, timeout: float = 10) -> bytes:
    """Everything the server sends until it ends the connection."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def assert_refused(response: bytes) -> None:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), response[:500]
    text = body.decode()
    assert "Request too large" in text and "at most 1 MB" in text and "Traceback" not in text


def request_head(path: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/x-www-form-urlencoded"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


PATHS = [reverse("login"), reverse("dataset_upload")]


@pytest.mark.parametrize("path", PATHS)
def test_a_huge_content_length_is_refused_before_the_body_is_read(server, path):
    started = time.monotonic()
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(request_head(path, Content_Length=str(HUGE), Expect="100-continue") + b"username=a&password=")
        response = read_response(sock)
    assert_refused(response)
    assert b"100 Continue" not in response  # no invitation to send the 50 GB
    assert time.monotonic() - started < 3  # answered at once, not after a timeout


@pytest.mark.parametrize("path", PATHS)
def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(server, path):
    """The client streams 64 KB chunks and would stop at 16 times the limit: the answer comes while
    it is still sending (daphne without the guard answers only once the whole body is in)."""
    chunk = b"x" * 65536
    sent = 0
    answered_while_sending = False
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(request_head(path, Transfer_Encoding="chunked"))
        try:
            while sent < 16 * LIMIT:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
                if select.select([sock], [], [], 0)[0]:
                    answered_while_sending = True
                    break
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            answered_while_sending = True  # the server closed after answering
        response = read_response(sock)
    assert answered_while_sending, f"no answer after {sent} bytes: {response[:300]!r}"
    assert_refused(response)
    assert sent < 8 * LIMIT  # the limit plus what the sockets' buffers held


def session_and_csrf(server, user) -> dict[str, str]:
    """Cookie and form token of a logged-in browser of ``user`` on the upload page of ``server``."""
    browser = Client()
    browser.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    connection = http.client.HTTPConnection(*server, timeout=30)
    connection.request("GET", reverse("dataset_upload"), headers={"Cookie": cookie})
    response = connection.getresponse()
    page = response.read().decode()
    assert response.status == 200, page[:1000]
    csrf_cookie = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie") or "").group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    connection.close()
    return {"Cookie": f"{cookie}; csrftoken={csrf_cookie}", "token": token}


def post_upload(server, auth: dict[str, str], name: str, content: bytes) -> tuple[int, str, str]:
    boundary = "----nas-studio-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n{auth["token"]}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    connection = http.client.HTTPConnection(*server, timeout=60)
    connection.request(
        "POST",
        reverse("dataset_upload"),
        body=body,
        headers={
            "Cookie": auth["Cookie"],
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Referer": f"http://{server[0]}:{server[1]}/",
        },
    )
    response = connection.getresponse()
    result = response.status, response.getheader("Location") or "", response.read().decode()
    connection.close()
    return result


def test_a_normal_upload_still_works_and_one_just_over_the_upload_limit_gets_the_form_message(
    server, alice, breast_cancer_csv
):
    auth = session_and_csrf(server, alice)
    status, location, page = post_upload(server, auth, "breast_cancer.csv", breast_cancer_csv.read_bytes())
    assert status == 302, page[:2000]
    dataset = Dataset.objects.get()
    assert location == reverse("dataset_detail", args=[dataset.pk]) and dataset.rows == 569

    # Over the upload limit but within the room left for the form: the page says why, not a bare 413.
    before = stored_dataset_files(settings.MEDIA_ROOT)
    status, _, page = post_upload(server, auth, "big.csv", b"a,b\n" + b"1,2\n" * (UPLOAD_MB * 2**20 // 4 + 1000))
    assert status == 400 and "larger than the 1 MB limit" in page
    assert Dataset.objects.count() == 1 and stored_dataset_files(settings.MEDIA_ROOT) == before


# --- the middleware on its own, for a server that streams the body to the application ------------


class Recorder:
    """The server's side of one ASGI request: hands out body chunks and keeps what comes back."""

    def __init__(self, chunks: int, chunk: bytes):
        self.chunks, self.chunk, self.received = chunks, chunk, 0
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        if self.received >= self.chunks:
            await asyncio.sleep(3600)  # the client waits for an answer
        self.received += 1
        return {"type": "http.request", "body": self.chunk, "more_body": self.received < self.chunks}

    async def send(self, message: dict) -> None:
        self.sent.append(message)


def run_app(headers: list[tuple[bytes, bytes]], recorder: Recorder) -> None:
    from webapp.asgi import application

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": reverse("login"), "raw_path": reverse("login").encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers], "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    asyncio.run(asyncio.wait_for(application(scope, recorder.receive, recorder.send), timeout=30))


@pytest.fixture
def django_requests():
    """The requests Django starts handling while the test runs."""
    started: list[object] = []

    def record(**kwargs):
        started.append(kwargs)

    request_started.connect(record)
    yield started
    request_started.disconnect(record)


def test_the_middleware_refuses_a_long_content_length_without_reading(django_requests):
    recorder = Recorder(chunks=1, chunk=b"username=a")
    run_app([(b"content-length", str(HUGE).encode())], recorder)
    assert recorder.received == 0 and recorder.sent[0]["status"] == 413
    assert b"Request too large" in recorder.sent[1]["body"] and django_requests == []


def test_the_middleware_stops_a_streamed_body_at_the_limit(django_requests, settings):
    settings.MAX_UPLOAD_BYTES = 256 * 1024
    chunk = b"x" * 65536
    limit = settings.MAX_UPLOAD_BYTES + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    recorder = Recorder(chunks=10 * limit // len(chunk), chunk=chunk)
    run_app([(b"transfer-encoding", b"chunked")], recorder)
    assert recorder.received == limit // len(chunk) + 1  # not one chunk more than it took to pass the limit
    assert [m.get("status") for m in recorder.sent][:1] == [413] and django_requests == []


# --- Django's own limits -----------------------------------------------------------------------


def test_a_form_takes_one_file(alice_client, breast_cancer_csv, diabetes_csv):
    with open(breast_cancer_csv, "rb") as one, open(diabetes_csv, "rb") as two:
        response = alice_client.post(reverse("dataset_upload"), {"file": one, "other": two})
    assert response.status_code == 400 and "Traceback" not in response.content.decode()
    assert not Dataset.objects.exists()
    assert upload(alice_client, breast_cancer_csv).status_code == 302
