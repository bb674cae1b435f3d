"""Keeping each agent on its own ward's group topics: what its ``info`` says against what the registry holds.

An agent lists ``ward_groups`` among its capabilities when it understands ``agent.groups``, and
``ward:{ward}`` once it listens on that ward's group topics (docs/protocol.md §2, *Wards*). Whenever an
agent's ``info`` arrives (on each of its connects and on the controller's birth) the controller compares:

* an agent that could listen on its ward's topics but says another ward (enrolled before wards, so none)
  or other zones than its registry row is sent ``agent.groups`` with its ward and zones — the migration
  needs no site visit, and a missed command is repaired at its next connect;
* when the ward it says it listens on changes, its broker ACL is rewritten: the legacy group topics stay
  readable only until it reports its ward (controller/fleet/broker_accounts.py).

A technician changing a device's zones sends it ``agent.groups`` at once (:func:`send_groups`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session

from controller.messaging.events import DeviceChanged, EventBus
from controller.messaging.outbox import Outbox
from controller.storage.models import Device
from devices.protocol import WARD_GROUPS_CAPABILITY, AgentGroups, InfoPayload, capability_ward

log = logging.getLogger(__name__)


def in_step(device: Device, capabilities: Sequence[str], zones: Sequence[str]) -> bool:
    """Whether an agent reporting ``capabilities`` and ``zones`` listens on exactly its registry's groups."""
    return capability_ward(capabilities) == device.ward_id and list(dict.fromkeys(zones)) == list(device.zones)


def send_groups(outbox: Outbox, session: Session, device: Device, ttl_ms: int) -> bool:
    """Writes ``agent.groups`` (the device's ward and zones) for it into ``session``'s transaction, if its
    last ``info`` says it understands the command and it may connect; True if written."""
    if WARD_GROUPS_CAPABILITY not in (device.capabilities or ()) or device.revoked_at is not None:
        return False
    outbox.send(session, AgentGroups(ward=device.ward_id, zones=list(device.zones)), device.id, ttl_ms=ttl_ms)
    return True


class GroupsKeeper:
    """Reacts to each agent ``info`` the fleet recorder takes in (its ``on_info`` hook)."""

    def __init__(self, outbox: Outbox, events: EventBus, ttl_ms: int) -> None:
        self.outbox = outbox
        self.events = events
        self.ttl_ms = ttl_ms

    def on_info(self, session: Session, device: Device, body: InfoPayload, before: Sequence[str]) -> None:
        """``device`` (already updated from ``body``) reported its info; ``before`` were its capabilities."""
        if capability_ward(before) != capability_ward(body.capabilities):
            # The ward it listens on changed: its ACL follows (the legacy topics go once it says its ward).
            self.events.publish(DeviceChanged(frozenset({device.id}), access=True), session)
        if (WARD_GROUPS_CAPABILITY in body.capabilities and not in_step(device, body.capabilities, body.zones)
                and send_groups(self.outbox, session, device, self.ttl_ms)):
            log.info("agent %s listens on ward %s zones %s; sent it ward %s zones %s", device.id,
                     capability_ward(body.capabilities) or "- (legacy)", ",".join(body.zones) or "-",
                     device.ward_id, ",".join(device.zones) or "-")
