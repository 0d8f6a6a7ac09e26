"""A ceiling on request bodies: anything larger than an upload plus its form is refused with 413
before it is read.

Two layers, one limit (``body_limit()``):

- ``BodyLimitMiddleware`` wraps the ASGI "http" app. A Content-Length over the limit is answered
  at once, without reading the body; a body without one (chunked) is counted as it arrives and
  refused as soon as it passes the limit: Django never builds a request from it. This is all a
  server that streams bodies to the application (uvicorn, hypercorn) needs.
- daphne does not stream: Twisted reads the whole body into a temporary file before the ASGI
  application even starts, so the middleware alone would refuse a 10 GB body only after it sat on
  disk. ``install_daphne_guard()`` (called by ``webapp/asgi.py`` when daphne is the server) puts
  the same check into daphne's request object: it answers 413 when the headers announce too much,
  or as soon as a chunked body passes the limit, keeps nothing, and drops the rest of the body
  unread.

A proxy in front should still set its own limit (nginx ``client_max_body_size``): it stops an
oversized body before it takes a connection of the application server at all.
"""

from __future__ import annotations

import io
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# After refusing a body, daphne keeps reading (and dropping) what the client still sends for this
# long, so the client reads the 413 instead of a connection reset, then closes the connection.
LINGER_SECONDS = 5.0


def body_limit() -> int:
    """The largest request body read at all: the upload limit plus room for the form's other fields
    (DATA_UPLOAD_MAX_MEMORY_SIZE, which also bounds a body that is not a file upload)."""
    return int(settings.MAX_UPLOAD_BYTES) + int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)


def too_large_page() -> bytes:
    megabytes = body_limit() / (1024 * 1024)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Request too large</title></head>'
        "<body><h1>Request too large</h1>"
        f"<p>This server reads request bodies of at most {megabytes:.0f} MB (an upload of at most "
        f"{settings.MAX_UPLOAD_MB} MB and its form). Nothing was kept.</p></body></html>\n"
    ).encode()


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


class BodyLimitMiddleware:
    """ASGI middleware: 413 for a body over ``body_limit()``, decided before the body is read."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit()
        length = _content_length(scope.get("headers", []))
        if length is not None and length > limit:
            await self._refuse(send)
            return

        received = 0
        refused = False
        response_started = False

        async def limited_receive() -> dict:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Django sees a client that went away: it builds no request and answers nothing.
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: dict) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, limited_receive, watched_send)
        if refused and not response_started:
            await self._refuse(send)

    @staticmethod
    async def _refuse(send: Any) -> None:
        body = too_large_page()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _discard(data: bytes) -> None:
    """What a refused connection does with the rest of its body."""


def install_daphne_guard() -> bool:
    """Make daphne refuse an oversized body while it receives it (see the module's docstring).

    Only acts in a process where daphne is the server (its CLI imports ``daphne.http_protocol``
    before the application): importing it here could install the wrong Twisted reactor. Returns
    whether the guard is in place."""
    http_protocol = sys.modules.get("daphne.http_protocol")
    if http_protocol is None:
        return False
    factory = http_protocol.HTTPFactory
    if getattr(factory, "body_limit_guard", False):
        return True
    try:
        base = http_protocol.WebRequest
        original_build = factory.buildProtocol
    except AttributeError as exc:  # a daphne this code does not know
        raise ImproperlyConfigured(f"Cannot install the request-body limit into daphne: {exc}") from exc

    class LimitedWebRequest(base):  # type: ignore[misc, valid-type]
        """daphne's request, which stops reading a body at ``body_limit()``."""

        body_refused = False
        body_received = 0

        def gotLength(self, length):  # noqa: N802 (Twisted's name)
            if length is not None and length > body_limit():
                self.content = io.BytesIO()
                self._refuse_body()
                return
            super().gotLength(length)

        def handleContentChunk(self, data):  # noqa: N802
            if self.body_refused:
                return
            self.body_received += len(data)
            if self.body_received > body_limit():
                self.content.close()  # a temporary file goes with it
                self.content = io.BytesIO()
                self._refuse_body()
                return
            super().handleContentChunk(data)

        def requestReceived(self, command, path, version):  # noqa: N802
            if self.body_refused:
                return  # the application never sees it
            super().requestReceived(command, path, version)

        def _refuse_body(self) -> None:
            from twisted.internet import reactor

            self.body_refused = True
            # Twisted would answer "Expect: 100-continue" right after this; the answer is no.
            self.requestHeaders.removeHeader(b"Expect")
            channel = self.channel
            channel.dataReceived = _discard  # the rest of the body is dropped unread
            transport = channel.transport
            body = too_large_page()
            transport.write(
                b"HTTP/1.1 413 Content Too Large\r\nContent-Type: text/html; charset=utf-8\r\n"
                + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                + body
            )
            # Half-close: the answer goes out and is followed by end-of-file while what the client
            # still sends is read and dropped; closing at once with unread data would reset the
            # connection and could lose the answer.
            try:
                transport.loseWriteConnection()
            except (AttributeError, NotImplementedError):
                transport.loseConnection()
            reactor.callLater(LINGER_SECONDS, transport.loseConnection)  # type: ignore[attr-defined]

    def buildProtocol(self, addr):  # noqa: N802
        protocol = original_build(self, addr)
        if protocol is not None:
            protocol.requestFactory = LimitedWebRequest
        return protocol

    factory.buildProtocol = buildProtocol
    factory.body_limit_guard = True
    return True
