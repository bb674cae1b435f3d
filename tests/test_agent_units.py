"""Agent pieces that need no broker: config validation, the on-disk store, the CLI's error path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.protocol import public_key_to_text
from edge_agent.config import ConfigError, load_config
from edge_agent.store import AgentStore

KEY = public_key_to_text(Ed25519PrivateKey.generate().public_key())
GOOD = f"""
agent_id = "loa-01"
zones = ["khu-pho-1"]
controller_url = "http://127.0.0.1:8080"
controller_public_key = "{KEY}"
token = "0123456789abcdef0123"
data_dir = "data"

[output]
kind = "file"
directory = "sink"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_good_config_resolves_paths_against_its_folder(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.data_dir == tmp_path / "data"
    assert cfg.output.kind == "file" and cfg.output.directory == tmp_path / "sink"
    assert cfg.mqtt.session_expiry_s > 0


@pytest.mark.parametrize(("change", "needle"), [
    (("loa-01", "LOA 01"), "agent_id"),
    (("token =", "tokn ="), "tokn"),
    ((KEY, "bm90IGEga2V5"), "public key"),
    (('kind = "file"', 'kind = "hdmi"'), "output"),
    (("http://127.0.0.1:8080", "not a url"), "controller_url"),
    (("data_dir", "[data_dir"), "TOML"),
])
def test_bad_config_is_refused_with_the_reason(tmp_path: Path, change: tuple[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config(write(tmp_path, GOOD.replace(*change)))


def test_agent_cli_exits_2_on_a_bad_config(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("loa-01", "LOA"))
    proc = subprocess.run([sys.executable, "-m", "loaphuong.cli", "agent", "--config", str(path)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "agent_id" in proc.stderr
    missing = subprocess.run([sys.executable, "-m", "loaphuong.cli", "agent", "--config", str(tmp_path / "no.toml")],
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_agent_import_pulls_no_controller_dependency() -> None:
    code = ("import sys, edge_agent.agent, edge_agent.cli; "
            "bad = [m for m in ('fastapi', 'sqlalchemy', 'alembic', 'uvicorn', 'controller', 'argon2') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_store_outbox_and_replay(tmp_path: Path) -> None:
    store = AgentStore(tmp_path / "a.sqlite3")
    assert store.check_and_remember("id1", 10**15) is False
    assert store.check_and_remember("id1", 10**15) is True
    store.enqueue_event("e1", "t", b"1")
    store.enqueue_event("e2", "t", b"2")
    assert [r.id for r in store.events_due(20_000)] == ["e1", "e2"]
    store.mark_sent(["e1", "e2"])
    assert store.events_due(20_000) == []
    store.mark_all_unsent()
    assert len(store.events_due(20_000)) == 2
    assert store.ack_events(["e1", "zzz"]) == 1
    assert store.unacked_count() == 1
    store.close()
    reopened = AgentStore(tmp_path / "a.sqlite3")
    assert reopened.check_and_remember("id1", 10**15) is True
    assert reopened.unacked_count() == 1


def test_media_cache_evicts_least_recently_used_but_never_media_in_use(tmp_path: Path) -> None:
    import os

    from edge_agent.media_cache import MediaCache

    in_use = {"aa" * 32}
    cache = MediaCache(tmp_path / "media", "http://127.0.0.1:9", "t" * 20, max_bytes=10_000, capacity_bytes=2500,
                       in_use=lambda: in_use)
    for age, name in enumerate(("aa", "bb", "cc", "dd")):
        path = cache.root / (name * 32)
        path.write_bytes(b"x" * 1000)
        os.utime(path, (1000 + age, 1000 + age))  # aa oldest … dd newest
    (cache.root / ".partial.part").write_bytes(b"x" * 5000)  # not a cache entry: ignored
    assert cache.evict(keep={"dd" * 32}) == 2
    assert sorted(p.name[:2] for p in cache.root.iterdir() if not p.name.startswith(".")) == ["aa", "dd"]
    with pytest.raises(ValueError):
        MediaCache(tmp_path / "m2", "file:///etc", "t" * 20, max_bytes=1)


def test_the_documented_example_config_is_valid(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "agent.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    cfg = load_config(write(tmp_path, example))
    assert cfg.output.kind == "alsa" and cfg.output.player == "aplay"
