"""The one exception of the protocol: a message that breaks the contract, with a machine-readable reason."""

from __future__ import annotations


class ProtocolError(ValueError):
    """A message that breaks the contract; ``reason`` is a short machine-readable cause."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
