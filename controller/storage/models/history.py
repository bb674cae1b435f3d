"""What happened to the fleet over time, for reports: every change of an agent's link state."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from controller.storage.models.base import Base
from controller.storage.models.units import FIRST_WARD


class DeviceStatusChange(Base):
    """An agent's link state changed (``online``, ``offline``, ``stopped``…) at ``at_ms``.

    The devices table keeps only the state now; a ward's monthly availability and its outages (offline →
    online again) are read from these rows.
    """

    __tablename__ = "device_status_changes"
    __table_args__ = (
        # The state an agent was in when a month began: its last change before then.
        Index("ix_device_status_changes_agent_at", "agent_id", "at_ms"),
        # A ward's changes within a month, without reading other wards'.
        Index("ix_device_status_changes_ward_at", "ward_id", "at_ms"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    #: The ward the agent was in then (a device moved later leaves its history where it was).
    ward_id: Mapped[str] = mapped_column(ForeignKey("units.id"), default=FIRST_WARD)
    status: Mapped[str] = mapped_column(String(16))
    #: When the controller learnt of it (ms since the epoch).
    at_ms: Mapped[int] = mapped_column(BigInteger)
