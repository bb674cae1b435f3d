"""Remote operations as staff ask for them: the device must exist and be enabled, the agent's answer (or
its silence) goes into the audit trail. The API's route and the console's devices page both call
:class:`DeviceOperations`; sending the signed command and waiting for the reply is
:class:`controller.fleet.remote_ops.OpsService`'s part.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.orm import Session

from controller.accounts import audit_chain
from controller.accounts.reach import NotInReach, check_ward
from controller.fleet.provisioning import TECHNICIAN_ROLES, DeviceNotFound
from controller.fleet.remote_ops import OPS, OpError, OpResult, OpsService
from controller.storage.models import Device, User


class DeviceDisabled(Exception):
    """The device is disabled (revoked): it is not operated until it is enrolled again."""


class UnknownOperation(LookupError):
    """No operation of that name."""


class DeviceOperations:
    """Checks, runs and audits one remote operation."""

    def __init__(self, ops: OpsService) -> None:
        self.ops = ops

    async def run(self, session: Session, device_id: str, op: str, body: dict[str, Any] | None, user: User,
                  wait_s: float) -> OpResult:
        """Sends ``op`` to the device and returns the agent's reply.

        Only a device of a ward where ``user`` is a technician: one of a ward they cannot see is
        :class:`~controller.fleet.provisioning.DeviceNotFound` like an unknown id, one they see without the role
        :class:`~controller.accounts.reach.OutsideRole`.

        Raises :class:`~controller.fleet.provisioning.DeviceNotFound`, :class:`DeviceDisabled`,
        :class:`UnknownOperation`, or the :class:`~controller.fleet.remote_ops.OpError` of a send that failed (recorded
        in the audit trail when the agent did not answer or the broker was unreachable).
        """
        ward: list[str] = []

        def check() -> None:
            device = session.get(Device, device_id)
            if device is None:
                raise DeviceNotFound(device_id)
            try:
                check_ward(session, user, device.ward_id, TECHNICIAN_ROLES, "")
            except NotInReach:
                raise DeviceNotFound(device_id) from None
            ward.append(device.ward_id)
            if not device.enabled:
                raise DeviceDisabled(f"device {device_id!r} is disabled")
            if op not in OPS:
                raise UnknownOperation(f"unknown operation {op!r}; one of: {', '.join(OPS)}")
            session.commit()  # end the read transaction: the wait below may take seconds

        def record(detail: dict[str, Any]) -> None:
            audit_chain.record(session, user, f"device.ops.{op}", device_id, {"body": body or {}, **detail},
                               unit=ward[0])
            session.commit()

        # The database work runs in a worker thread, one step after another on the caller's session: a
        # SQLite write waiting for the lock must not hold up the event loop (every live stream, every reply).
        await asyncio.to_thread(check)
        try:
            result = await self.ops.run(device_id, op, body, wait_s)
        except OpError as exc:
            if exc.code in ("timeout", "link_down"):
                await asyncio.to_thread(record, {"error": exc.code})
            raise
        reply = result.reply
        await asyncio.to_thread(record, {"command_id": result.command_id, "status": reply.status,
                                         **({"error": reply.error} if reply.error else {})})
        return result
