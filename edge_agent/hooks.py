"""The callables the agent hands its parts, typed once: run blocking work, queue an event, fetch a recording."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from devices.protocol import VerifiedCommand

#: Runs a blocking call on the agent's worker threads (never on the event loop).
InThread = Callable[[Callable[[], Any]], Awaitable[Any]]
#: Queues an event (type, data) in the agent's outbox.
EmitFn = Callable[[str, BaseModel], Awaitable[None]]
#: Makes a recording (sha256, size) ready in the media cache and returns its path. Blocks.
FetchFn = Callable[[str, int], Path]
#: Handles one verified command and answers it.
CommandHandler = Callable[[VerifiedCommand], Awaitable[None]]
