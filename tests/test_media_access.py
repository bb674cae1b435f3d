"""A device token reads only the media its device was given (issue 16, item 7): its announcements (its own
commands and its zones' group commands), its schedule window, the standby alarms, its signs' images.
Anything else is a 404, the same as for a file that does not exist; staff read everything.

With real Mosquitto, the controller under uvicorn and two real agents, whose own downloads must keep
working; the sign-playlist rule (which needs a board) against the real database below.
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.broadcasts.media_access import device_may_fetch
from controller.storage import migrate
from controller.storage.engine import Database
from controller.storage.models import AgentSignPlaylist, Device, MediaFile
from controller.tools.local_stack import http_json
from devices.led.content import ImagePage, TextPage
from devices.protocol import SIGNS_TYPE, Signer, SignPlaylist, SignPlaylistEntry, now_ms
from tests.conftest import AgentFactory, ControllerHandle
from tests.test_api import _upload


def fetch(controller: ControllerHandle, sha256: str, token: str) -> tuple[int, bytes]:
    """GET /media/{sha256} with a bearer token: (status, body)."""
    req = urllib.request.Request(f"{controller.api}/media/{sha256}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _tone(directory: Path, frequency: int) -> bytes:
    wav = directory / f"tone-{frequency}.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency={frequency}:duration=2", "-ar", "48000", "-ac", "1", str(wav)],
                   check=True, timeout=60)
    return wav.read_bytes()


def _announce(controller: ControllerHandle, text: str, targets: object) -> str:
    status, accepted = controller.post("/api/v1/announcements", {"text": text, "targets": targets})
    assert status == 202, accepted
    ann = controller.wait_deliveries(accepted["id"], {"played"}, timeout=40)
    sha: str = ann["media"]["sha256"]
    return sha


def test_a_device_reads_only_the_media_it_was_given(controller: ControllerHandle, agents: AgentFactory,
                                                    tmp_path: Path) -> None:
    a1 = agents("loa-01", zones=("khu-pho-1",))
    a2 = agents("loa-02", zones=("khu-pho-2",))
    t1, t2 = a1.registered["token"], a2.registered["token"]

    # Announcements: to loa-01 alone (its own command), to loa-02's zone (a group command). Each agent
    # downloaded its own with its token, or it would not have played.
    own = _announce(controller, "Loa một: họp tổ dân phố lúc tám giờ.", ["loa-01"])
    zone = _announce(controller, "Khu phố hai: cắt nước từ chín giờ.", {"zones": ["khu-pho-2"]})
    assert fetch(controller, own, t1)[0] == 200 and fetch(controller, zone, t2)[0] == 200
    refused = fetch(controller, own, t2)
    missing = fetch(controller, "0" * 64, t2)
    assert refused[0] == 404 and fetch(controller, zone, t1)[0] == 404
    assert refused == missing, "a refusal must look exactly like a file that does not exist"
    for sha in (own, zone):  # staff as before
        assert fetch(controller, sha, controller.token)[0] == 200

    # A recording in loa-02's schedule window: loa-02 fetches it ahead of time; loa-01 may not.
    status, stored = _upload(controller, _tone(tmp_path, 500))
    assert status == 201, stored
    windowed = stored["sha256"]
    assert fetch(controller, windowed, t2)[0] == 404  # stored, but given to nobody yet
    start = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    status, item = controller.post("/api/v1/schedule/items", {
        "title": "Nhạc hiệu", "content": [{"kind": "media", "sha256": windowed}],
        "targets": {"agents": ["loa-02"]}, "start": start})
    assert status == 201, item
    controller.wait_for(lambda: f"cached media {windowed[:12]}" in a2.log(), 30, "loa-02 prefetches its window")
    assert fetch(controller, windowed, t2)[0] == 200
    assert fetch(controller, windowed, t1)[0] == 404

    # A standby alarm is for every agent, whatever its zones; both fetch it by themselves.
    status, stored = _upload(controller, _tone(tmp_path, 900))
    assert status == 201, stored
    alarm = stored["sha256"]
    assert fetch(controller, alarm, t1)[0] == 404
    status, marked = http_json("PUT", f"{controller.api}/api/v1/media/{alarm}/standby", controller.token,
                               {"standby": True})
    assert status == 200 and marked["standby"] is True, marked
    for agent in (a1, a2):
        controller.wait_for(lambda a=agent: f"cached media {alarm[:12]}" in a.log(), 30,  # type: ignore[misc]
                            f"{agent.agent_id} fetches the standby alarm")
    assert fetch(controller, alarm, t1)[0] == 200 and fetch(controller, alarm, t2)[0] == 200

    # The refusals were noted, and no agent met one in its own downloads.
    assert "device loa-02 asked for media" in controller.proc.log_text()
    for agent in (a1, a2):
        assert "HTTP 404" not in agent.log(), agent.log()


def test_sign_images_are_for_the_agent_whose_playlist_shows_them(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate.upgrade(db.engine)
    signer = Signer(Ed25519PrivateKey.generate())
    shown, quoted = "ab" * 32, "cd" * 32
    page = ImagePage(sha256=shown, size=1000, mime="image/png")
    # A title may quote any text, even a file's member as JSON spells it; escaped, it grants nothing.
    entry = SignPlaylistEntry(entry_id="e-1", title=f'"sha256":"{quoted}"', start_at=now_ms(),
                              end_at=now_ms() + 60_000, pages=[page, TextPage(lines=[quoted])])
    envelope = signer.command(SIGNS_TYPE, SignPlaylist(version=1, window_start=now_ms(), window_end=now_ms() + 60_000,
                                                       entries=[entry]), to="loa-01", ttl_ms=60_000)
    with db.session() as session:
        for agent_id in ("loa-01", "loa-02"):
            session.add(Device(id=agent_id, token_hash=agent_id * 4))
        for sha in (shown, quoted):
            session.add(MediaFile(sha256=sha, size=1000, duration_ms=0, mime="image/png", source="sign-image"))
        session.flush()
        session.add(AgentSignPlaylist(agent_id="loa-01", version=1, digest="0" * 64, window_end_ms=now_ms(),
                                      payload=envelope.to_bytes().decode()))
    with db.session() as session:
        image, other = session.get(MediaFile, shown), session.get(MediaFile, quoted)
        assert image is not None and other is not None
        assert device_may_fetch(session, "loa-01", image)
        assert not device_may_fetch(session, "loa-02", image)
        assert not device_may_fetch(session, "loa-01", other)
        other.standby = True
        assert device_may_fetch(session, "loa-02", other)
