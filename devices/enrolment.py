"""The enrolment contract: what the controller answers a Pi that presents a one-time code
(``POST /api/v1/enrol``), read by both sides — the controller builds it, ``loaphuong agent enroll`` parses
it. Unknown fields from a newer controller are ignored by an older agent (Pydantic's default).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class MqttIdentity(BaseModel):
    """The device's broker account and how to reach the broker."""

    host: str
    port: int
    username: str
    password: str
    tls: bool
    #: PEM of the CA that signed the broker's certificate (null: plain TCP, e.g. on a trusted LAN).
    ca_certificate: str | None


class EnrolmentIdentity(BaseModel):
    """Everything ``loaphuong agent enroll`` writes into the agent's config; secrets shown once."""

    agent_id: str
    name: str
    #: The ward the device serves (its group topics are that ward's); absent from controllers before wards.
    ward: str | None = None
    zones: list[str]
    controller_url: str
    controller_public_key: str
    token: str
    mqtt: MqttIdentity
    board_profile: dict[str, Any] | None
