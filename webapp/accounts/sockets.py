"""WebSockets end with the session that opened them.

Each socket joins its session's group on the channel layer (``session_group``); when the session
ends by logging out, one message to that group makes every socket of that session close (the
job page's socket: ``SearchJobConsumer.session_ended``). Another session of the same user (another
browser) keeps its sockets.
"""

import hashlib
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
SESSION_ENDED = "session.ended"


def session_group(session_key: str) -> str:
    """The channel-layer group of one session's sockets (hashed: the key itself stays secret)."""
    return "session-" + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def end_session_sockets(session_key: str | None) -> None:
    """Tell every socket of the session to close. A channel layer that is down is logged; the
    log-out itself goes on (the socket then lives until it reconnects, which needs a session)."""
    if not session_key:
        return
    try:
        async_to_sync(get_channel_layer().group_send)(session_group(session_key), {"type": SESSION_ENDED})
    except (OSError, RedisError, TimeoutError) as exc:
        logger.warning("The sockets of a session that ended were not told to close: %s", exc)


def _on_logged_out(sender, request, user, **kwargs) -> None:
    session = getattr(request, "session", None)
    end_session_sockets(session.session_key if session is not None else None)


def connect() -> None:
    user_logged_out.connect(_on_logged_out, dispatch_uid="accounts.end_session_sockets", weak=False)
