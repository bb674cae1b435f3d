"""The agent's configuration file (TOML), validated strictly so a typo fails at start, not at 3 a.m."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator, model_validator

from devices.led.settings import SignSettings, VirtualDriverSettings
from devices.protocol import ID_PATTERN, public_key_from_text
from edge_agent.amplifier import AmplifierSection


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttSection(_Strict):
    """Broker address and this agent's credentials on it."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    keepalive: int = Field(default=30, ge=5, le=600)
    #: How long the broker keeps this agent's session and queued commands while it is offline.
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    tls_ca_file: Path | None = None


class FileOutputSection(_Strict):
    """A sink that writes what it plays to WAV files (demo, tests)."""

    kind: Literal["file"]
    name: str = "file"
    directory: Path


class AlsaOutputSection(_Strict):
    """A real speaker through mpv on an ALSA device."""

    kind: Literal["alsa"]
    name: str = "speaker"
    device: str = "default"
    #: aplay plays audio decoded ahead (small while playing); mpv decodes as it plays.
    player: Literal["aplay", "mpv"] = "aplay"


OutputSection = Annotated[FileOutputSection | AlsaOutputSection, Field(discriminator="kind")]


class CamerasSection(_Strict):
    """ONVIF camera discovery (WS-Discovery) on the agent's LAN; absent: the agent does not look for cameras."""

    #: Probe this often by itself (seconds); absent: only when the controller sends ``camera.discover``.
    discover_interval_s: int | None = Field(default=None, ge=60, le=7 * 24 * 3600)
    #: How long a periodic probe collects answers.
    probe_timeout_ms: int = Field(default=3000, ge=200, le=30_000)
    #: Local IPv4 address whose interface the probe leaves by; absent: every LAN interface.
    interface: str | None = None
    #: Multicast TTL of the probe; 1 keeps it on the local segment.
    ttl: int = Field(default=1, ge=1, le=8)

    @field_validator("interface")
    @classmethod
    def _ipv4(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.IPv4Address(value)  # ValueError names the bad address
        return value


class AgentConfig(_Strict):
    """Everything an agent needs to know; see docs/agent.md for an example file."""

    agent_id: str = Field(pattern=ID_PATTERN)
    #: The ward the agent serves: it listens on that ward's group topics. Absent (enrolled before wards):
    #: the legacy group topics, until the controller sends ``agent.groups`` (edge_agent/groups.py).
    ward: str | None = Field(default=None, pattern=ID_PATTERN)
    zones: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(default_factory=list)
    #: The controller the media is fetched from (``{controller_url}/media/{sha256}``).
    controller_url: HttpUrl | None = None
    #: More controller replicas serving the same media; a download moves to the next on a connection error
    #: or a 5xx. Give ``controller_url``, ``controller_urls`` or both (``controller_url`` is tried first).
    controller_urls: list[HttpUrl] = Field(default_factory=list, max_length=16)
    #: base64 of the controller's raw Ed25519 public key; only commands it signed are obeyed.
    controller_public_key: str
    token: str | None = Field(default=None, min_length=16)
    token_file: Path | None = None
    data_dir: Path
    volume: int = Field(default=80, ge=0, le=100)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: Largest media file the agent will download (bytes).
    max_media_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    #: The media cache keeps recently played files up to this size; media of accepted plays is never evicted.
    media_cache_bytes: int = Field(default=1024 * 1024 * 1024, gt=0)
    mqtt: MqttSection = Field(default_factory=MqttSection)
    output: OutputSection
    #: LED signs and screens this agent drives (``[[signs]]``, see docs/agent.md and docs/signs.md).
    signs: list[SignSettings] = Field(default_factory=list, max_length=16)
    cameras: CamerasSection | None = None
    #: The amplifier's power relay (``[amplifier]``, see docs/operations.md); absent: no relay to switch.
    amplifier: AmplifierSection | None = None

    @field_validator("controller_public_key")
    @classmethod
    def _key_parses(cls, value: str) -> str:
        public_key_from_text(value)
        return value

    @field_validator("signs")
    @classmethod
    def _unique_sign_names(cls, value: list[SignSettings]) -> list[SignSettings]:
        names = [s.name for s in value]
        if len(set(names)) != len(names):
            raise ValueError(f"sign names must be unique: {names}")
        return value

    @model_validator(mode="after")
    def _one_token(self) -> AgentConfig:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("give exactly one of token or token_file")
        return self

    @model_validator(mode="after")
    def _some_controller(self) -> AgentConfig:
        if self.controller_url is None and not self.controller_urls:
            raise ValueError("give controller_url or controller_urls")
        return self

    def media_base_urls(self) -> list[str]:
        """Every controller address media may come from, ``controller_url`` first, without duplicates."""
        urls = [str(u).rstrip("/") for u in ([self.controller_url] if self.controller_url else [])
                + self.controller_urls]
        return list(dict.fromkeys(urls))

    def public_key(self) -> Ed25519PublicKey:
        """The controller's verification key."""
        return public_key_from_text(self.controller_public_key)

    def read_token(self) -> str:
        """The device token presented when downloading media."""
        if self.token is not None:
            return self.token
        assert self.token_file is not None
        return self.token_file.read_text(encoding="utf-8").strip()


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid; the message says where."""


def load_config(path: Path) -> AgentConfig:
    """Reads and validates an agent config file; relative paths resolve against the file's folder."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    try:
        cfg = AgentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    base = path.parent
    updates: dict[str, object] = {"data_dir": (base / cfg.data_dir).resolve()}
    if cfg.token_file is not None:
        updates["token_file"] = (base / cfg.token_file).resolve()
    if isinstance(cfg.output, FileOutputSection):
        updates["output"] = cfg.output.model_copy(update={"directory": (base / cfg.output.directory).resolve()})
    if any(isinstance(s.driver, VirtualDriverSettings) for s in cfg.signs):
        updates["signs"] = [s.model_copy(update={"driver": s.driver.model_copy(update={
            "directory": (base / s.driver.directory).resolve()})}) if isinstance(s.driver, VirtualDriverSettings)
            else s for s in cfg.signs]
    return cfg.model_copy(update=updates)
