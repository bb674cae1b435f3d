"""Controller settings, from ``LP_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the controller reads at start; defaults suit one ward on one machine."""

    model_config = SettingsConfigDict(env_prefix="LP_", env_file=".env", extra="forbid")

    data_dir: Path = Path("var/controller")
    #: SQLAlchemy URL; empty means SQLite in ``data_dir``.
    database_url: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    #: Base URL agents download media from; empty means ``http://{http_host}:{http_port}``.
    public_url: str = ""
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls_ca_file: str | None = None
    #: Broker security the controller manages (docs/security.md): Mosquitto's password and ACL files, which it
    #: rewrites from the device registry, and the pid file of the broker it sends SIGHUP to reload them.
    broker_password_file: Path | None = None
    broker_acl_file: Path | None = None
    broker_pid_file: Path | None = None
    #: The broker address and CA certificate given to agents at enrolment (default: mqtt_host/mqtt_port, no TLS).
    agent_mqtt_host: str = ""
    agent_mqtt_port: int | None = Field(default=None, ge=1, le=65535)
    agent_mqtt_ca_file: Path | None = None
    #: Enrolment codes expire this long after they are issued.
    enrolment_code_minutes: int = Field(default=24 * 60, ge=1, le=30 * 24 * 60)
    #: Announcements without a start time start this long after their speech is ready, so every
    #: speaker has time to download and all start together.
    play_lead_ms: int = Field(default=3000, ge=0, le=600_000)
    #: The same lead for emergency announcements ("broadcast now"): short, since an alarm cannot wait,
    #: but long enough for every speaker to receive it and start at the same instant.
    emergency_lead_ms: int = Field(default=700, ge=0, le=600_000)
    #: A command is void this long after its start time (a speaker busy longer drops it).
    command_ttl_ms: int = Field(default=10 * 60_000, ge=10_000)
    text_max_chars: int = Field(default=5000, ge=1, le=100_000)
    tts_voice: str = "vi"
    tts_rate_wpm: int = Field(default=150, ge=80, le=450)
    #: TOML file with the speech settings (engine chain, loudness, chimes…); see docs/speech.md.
    speech_config_file: Path | None = None
    #: A site's own abbreviations (TSV: ABBR<TAB>reading), added to and overriding the built-in ones.
    abbreviations_file: Path | None = None
    speech_cache_bytes: int = Field(default=2 * 1024**3, gt=0)
    upload_max_bytes: int = Field(default=100 * 1024**2, gt=0)
    upload_max_seconds: int = Field(default=3600, gt=0)
    #: The site's time zone: recurring items repeat by its wall clock (IANA name).
    timezone: str = "Asia/Ho_Chi_Minh"
    #: How far ahead each agent is sent its plays; it keeps playing them while the link is down.
    schedule_window_hours: int = Field(default=48, ge=1, le=14 * 24)
    #: The windows are rebuilt this often (and at once whenever an item, zone or device changes).
    schedule_refresh_minutes: int = Field(default=60, ge=1, le=24 * 60)
    #: A scheduled play may start this late when its speaker is busy (queued items get four times as long).
    schedule_grace_ms: int = Field(default=10 * 60_000, ge=0, le=24 * 3600 * 1000)
    #: Conflicts are looked for this many days ahead when an item is created or changed.
    conflict_horizon_days: int = Field(default=60, ge=1, le=400)
    #: Items need an approver's approval before they go out (an approver may not approve their own).
    require_approval: bool = False
    admin_username: str = "admin"
    log_level: str = "INFO"
    #: Camera gateway: a reader stops this long after its last viewer leaves (a viewer back in time reuses it).
    camera_viewer_grace_s: float = Field(default=10.0, ge=0.0, le=3600.0)
    camera_jpeg_quality: int = Field(default=80, ge=10, le=100)
    #: Longest wait between reconnection attempts to a dropped stream (back-off doubles up to this).
    camera_reconnect_max_s: float = Field(default=10.0, ge=0.5, le=600.0)
    #: A camera that gives no frame / no answer for this long raises a fault event for its agent and zone.
    camera_fault_after_s: float = Field(default=15.0, ge=1.0, le=3600.0)
    #: How often cameras nobody watches are checked for an answer on their ONVIF (or RTSP) port.
    camera_health_interval_s: float = Field(default=60.0, ge=1.0, le=24 * 3600.0)
    #: Stored motion snapshots: at most this many per camera, this old, this many bytes in all.
    camera_snapshot_max_per_camera: int = Field(default=1000, ge=1)
    camera_snapshot_max_days: float = Field(default=30.0, gt=0)
    camera_snapshot_max_bytes: int = Field(default=2 * 1024**3, gt=0)
    #: Camera events (rows) older than this are deleted, with any snapshot they still have.
    camera_event_max_days: float = Field(default=365.0, gt=0)
    #: Live views open at once across all cameras; one more gets 503 (each costs a little CPU and bandwidth).
    camera_max_viewers: int = Field(default=200, ge=1)
    #: Icecast access file (written with its config by ``controller.broadcasts.live.icecast``); without it live is off.
    icecast_file: Path | None = None
    #: Live session recordings are deleted this many days after the session.
    live_recording_days: float = Field(default=90.0, gt=0)
    #: A live session ends on its own after this long, or after this long without audio.
    live_max_seconds: int = Field(default=3 * 3600, ge=10, le=24 * 3600)
    live_idle_seconds: float = Field(default=5.0, ge=1.0, le=600.0)
    #: Each agent's share of the controller's inbox (controller/fleet/inbox.py): events and replies per second
    #: and at once (an agent resends its whole unacknowledged outbox after an outage), messages waiting;
    #: and everyone's together. What is dropped over them an agent sends again 20 s later.
    inbox_agent_rate: float = Field(default=20.0, gt=0)
    inbox_agent_burst: int = Field(default=2000, ge=1)
    inbox_agent_queue: int = Field(default=5000, ge=1)
    inbox_total_queue: int = Field(default=100_000, ge=1)
    #: The outbox's publisher looks for written messages this often besides being woken by each commit
    #: (controller/messaging/outbox.py): a row another process wrote, or a dead run left, is found.
    outbox_poll_s: float = Field(default=2.0, gt=0, le=60)
    #: Tests and maintenance only: messages are written to the outbox but not published.
    outbox_hold: bool = False
    #: The console map's tile server (docs/map.md), e.g. ``https://tile.openstreetmap.org/{z}/{x}/{y}.png``
    #: (mind its usage policy) or a ward's own; empty: no tiles, the markers on a plain background.
    map_tile_url: str = Field(default="", max_length=500)
    #: The credit the tiles' licence asks for, shown on the map, e.g. ``© OpenStreetMap contributors``.
    map_attribution: str = Field(default="", max_length=300)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Ho_Chi_Minh)") from None
        return value

    @field_validator("map_tile_url")
    @classmethod
    def _tile_template(cls, value: str) -> str:
        value = value.strip()
        if value and (not value.startswith(("http://", "https://", "/"))
                      or not all(part in value for part in ("{z}", "{x}", "{y}"))):
            raise ValueError(f"{value!r} is not a tile URL template: http(s)://…/{{z}}/{{x}}/{{y}}.png")
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The site's time zone."""
        return ZoneInfo(self.timezone)

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside the data directory."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'loaphuong.sqlite3').resolve()}"

    def resolved_public_url(self) -> str:
        """Where agents reach this controller over HTTP."""
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")
