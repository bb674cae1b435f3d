"""Remote operations on one agent: send a signed ``ops.*`` command and wait (bounded) for its reply.

Replies arrive on the fleet's worker thread (:class:`controller.fleet.recorder.FleetRecorder`); they resolve a
future registered under the command id on the event loop, so the API call that sent the command gets
the agent's answer, or a timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from controller.messaging.outbox import BrokerUnavailable, Outbox
from controller.messaging.routes import message_type
from devices.protocol import (
    OpsAmplifier,
    OpsLogs,
    OpsReload,
    OpsRestart,
    OpsTone,
    OpsVolume,
    Reply,
)

log = logging.getLogger(__name__)

#: Path name in ``/api/v1/devices/{id}/ops/{op}`` → (command type, data model); the type follows from the model.
OPS: Final[dict[str, tuple[str, type[BaseModel]]]] = {
    op: (message_type(model), model)
    for op, model in (("volume", OpsVolume), ("tone", OpsTone), ("restart", OpsRestart), ("reload", OpsReload),
                      ("amp", OpsAmplifier), ("logs", OpsLogs))
}
#: An operation the agent has not received by then is dropped by it (it may have been offline).
OPS_TTL_MS: Final = 30_000
#: How long the API waits for the reply at most.
MAX_WAIT_S: Final = 30.0
#: Operations waiting for a reply at once (a bound on the registry).
MAX_PENDING: Final = 1000
#: Operations that make the agent play: the command id is the play id of its proof of play.
PLAYING_OPS: Final = frozenset({message_type(OpsTone)})


class OpError(Exception):
    """The operation could not be asked for; ``code`` says why (the API maps it to a status)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class OpResult:
    """The agent's answer to one operation."""

    command_id: str
    command_type: str
    reply: Reply


class OpsService:
    """Sends operations and matches replies to them by command id."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._pending: dict[tuple[str, str], asyncio.Future[Reply]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Told (agent id, command id), in a worker thread, before a playing operation goes out, so the
        #: controller believes its proof of play (controller/fleet/play_guard.py).
        self.on_play_given: Callable[[str, str], None] = lambda _agent, _command: None

    @staticmethod
    def parse(op: str, body: dict[str, Any] | None) -> tuple[str, BaseModel]:
        """The command type and validated data for ``op``; OpError ``unknown_op``/``bad_data``."""
        entry = OPS.get(op)
        if entry is None:
            raise OpError("unknown_op", f"unknown operation {op!r}; one of: {', '.join(OPS)}")
        msg_type, model = entry
        try:
            return msg_type, model.model_validate(body or {})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ())) or "body"
            raise OpError("bad_data", f"{op}: {where}: {err.get('msg', '')}") from None

    async def run(self, agent_id: str, op: str, body: dict[str, Any] | None, wait_s: float) -> OpResult:
        """Signs and sends ``op`` to ``agent_id`` and waits up to ``wait_s`` for the reply.

        Raises OpError: ``unknown_op``, ``bad_data``, ``busy`` (too many waiting), ``link_down``,
        ``timeout`` (no reply: the agent is offline, or slow).
        """
        msg_type, data = self.parse(op, body)
        if len(self._pending) >= MAX_PENDING:
            raise OpError("busy", "too many operations waiting for replies")
        self._loop = asyncio.get_running_loop()
        # Said now, not written: an operation published after its caller gave up would act unasked.
        prepared = self._outbox.prepare(data, agent_id, ttl_ms=OPS_TTL_MS)
        assert prepared.id is not None  # a command is signed, so it has an id
        key = (agent_id, prepared.id)
        future: asyncio.Future[Reply] = self._loop.create_future()
        self._pending[key] = future
        try:
            if msg_type in PLAYING_OPS:
                await asyncio.to_thread(self.on_play_given, agent_id, prepared.id)
            try:
                await self._outbox.send_prepared(prepared)
            except BrokerUnavailable as exc:
                raise OpError("link_down", f"cannot reach the broker: {exc}") from None
            log.info("sent %s %s to %s", msg_type, prepared.id, agent_id)
            try:
                reply = await asyncio.wait_for(future, timeout=min(max(wait_s, 0.1), MAX_WAIT_S))
            except TimeoutError:
                raise OpError("timeout", f"{agent_id} did not answer {msg_type} within {wait_s:g} s") from None
        finally:
            self._pending.pop(key, None)
        return OpResult(prepared.id, msg_type, reply)

    def resolve_threadsafe(self, agent_id: str, reply: Reply) -> None:
        """Hands a reply over from the fleet's worker thread; replies nobody waits for are ignored."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._resolve, agent_id, reply)

    def _resolve(self, agent_id: str, reply: Reply) -> None:
        future = self._pending.get((agent_id, reply.id))
        if future is not None and not future.done():
            future.set_result(reply)
