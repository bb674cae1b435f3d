"""The groups an agent listens on: its ward and zones, from its config until the controller says otherwise.

An agent enrolled before wards has no ``ward`` in its config and listens on the legacy group topics. The
controller moves it (``agent.groups``, docs/protocol.md §2 *Wards*) without a site visit: the agent keeps
the groups it was given in ``{data_dir}/groups.json``, which wins over the config file from then on (the
file is the technician's; the agent never rewrites it), and moves its subscriptions at once.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from devices.protocol import AgentGroups, Topics

log = logging.getLogger(__name__)

GROUPS_FILE = "groups.json"


@dataclass(frozen=True, slots=True)
class Groups:
    """A ward (None: not known yet, the legacy topics) and the agent's zones."""

    ward: str | None
    zones: tuple[str, ...]

    def subscriptions(self) -> list[str]:
        """The group topics these groups are read on."""
        if self.ward is None:
            return Topics.legacy_group_subscriptions(list(self.zones))
        return Topics.ward_group_subscriptions(self.ward, list(self.zones))

    def stale(self) -> list[str]:
        """Group topics an earlier session may still hold and these groups do not want.

        A persistent session keeps its subscriptions across reconnects and restarts, so an agent that moved
        to its ward's topics drops the legacy ones of its zones (and the fleet's ``all``) at every connect.
        """
        if self.ward is None:
            return []
        return Topics.legacy_group_subscriptions(list(self.zones))


class GroupsStore:
    """``{data_dir}/groups.json``: the groups the controller last gave, kept across restarts."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / GROUPS_FILE

    def load(self, ward: str | None, zones: list[str]) -> Groups:
        """The groups given by the controller if any (an unreadable file is logged and ignored), else the config's."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            given = AgentGroups.model_validate(raw)
        except FileNotFoundError:
            return Groups(ward, tuple(dict.fromkeys(zones)))
        except (OSError, ValueError, ValidationError) as exc:
            log.error("ignoring unreadable %s, using the config's ward and zones: %s", self.path, exc)
            return Groups(ward, tuple(dict.fromkeys(zones)))
        return Groups(given.ward, tuple(dict.fromkeys(given.zones)))

    def save(self, groups: AgentGroups) -> None:
        """Writes the groups atomically (blocks)."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(groups.model_dump_json(), encoding="utf-8")
        os.replace(tmp, self.path)
