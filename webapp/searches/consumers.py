"""The job page's WebSocket: a snapshot on connect, then every trial and status event."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from webapp.accounts.sockets import session_group
from webapp.searches import events, selectors

UNAUTHENTICATED = 4401
NOT_FOUND = 4404


class SearchJobConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        job_id = int(self.scope["url_route"]["kwargs"]["pk"])
        if await database_sync_to_async(selectors.search_snapshot)(user=user, pk=job_id) is None:
            await self.close(code=NOT_FOUND)
            return
        self.group = events.group_name(job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        # Logging out of this session closes this socket (webapp.accounts.sockets).
        session = self.scope.get("session")
        session_key = session.session_key if session is not None else None
        self.session_group = session_group(session_key) if session_key else None
        if self.session_group:
            await self.channel_layer.group_add(self.session_group, self.channel_name)
        await self.accept()
        # Read the snapshot after joining the group: an event may then arrive twice (the page
        # de-duplicates by trial id) but never fall between snapshot and subscription.
        snapshot = await database_sync_to_async(self.snapshot)(user, job_id)
        if snapshot is None:  # deleted meanwhile
            await self.close(code=NOT_FOUND)
            return
        await self.send_json(snapshot)

    @staticmethod
    def snapshot(user, job_id: int) -> dict | None:
        """The job, its trials and its latest log lines, as one snapshot event."""
        found = selectors.search_snapshot(user=user, pk=job_id)
        if found is None:
            return None
        job, trials = found
        return events.snapshot_payload(job, trials, selectors.search_log(job=job))

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if getattr(self, "session_group", None):
            await self.channel_layer.group_discard(self.session_group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """The page only listens; anything it sends is ignored."""

    async def job_event(self, event):
        await self.send_json(event["payload"])

    async def session_ended(self, event):
        """Its session logged out: the socket closes (the page then shows it is disconnected, and a
        reconnect without a session is refused)."""
        await self.close(code=UNAUTHENTICATED)
