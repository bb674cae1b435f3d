"""The shared protocol module: topics, envelope, signing and every check an agent makes."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from devices.protocol import (
    ALL_ZONE,
    ATTACHMENT_MAX_BYTES,
    COMMAND_MODELS,
    EVENT_MODELS,
    EventsAck,
    PlayStarted,
    Priority,
    ProtocolError,
    Signer,
    SpeakerPlay,
    SpeakerStop,
    Topics,
    Verifier,
    make_event,
    now_ms,
    parse_envelope,
    parse_event,
    parse_topic,
    public_key_from_text,
    public_key_to_text,
    target_zones,
    zone_target,
)

SHA = "0f" * 32
DOCS = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"


def order(**kw: object) -> SpeakerPlay:
    base: dict[str, object] = {"sha256": SHA, "size": 100, "duration_ms": 1000, "start_at": now_ms() + 1000}
    return SpeakerPlay.model_validate(base | kw)


class Seen:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    def __call__(self, msg_id: str, exp: int) -> bool:
        if msg_id in self.ids:
            return True
        self.ids.add(msg_id)
        return False


@pytest.fixture
def signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


def verifier(signer: Signer, agent: str = "loa-01", zones: tuple[str, ...] = ("khu-pho-1",)) -> Verifier:
    return Verifier(signer.public_key, agent, list(zones), Seen())


def test_topics_round_trip() -> None:
    assert Topics.status("loa-01") == "lp/v1/agent/loa-01/status"
    assert Topics.command("loa-01", "speaker.play") == "lp/v1/agent/loa-01/cmd/speaker.play"
    assert Topics.group_command("khu-pho-1", "speaker.stop") == "lp/v1/group/khu-pho-1/cmd/speaker.stop"
    info = parse_topic(Topics.event("loa-01", "play.finished"))
    assert (info.kind, info.agent_id, info.msg_type) == ("event", "loa-01", "play.finished")
    group = parse_topic(Topics.group_command("khu-pho-1", "speaker.play"))
    assert (group.kind, group.zone) == ("cmd", "khu-pho-1")
    assert parse_topic(Topics.CONTROLLER_STATUS).kind == "controller_status"


@pytest.mark.parametrize("bad", ["lp/v2/agent/a/status", "lp/v1/agent/A/status", "lp/v1/agent/a/nope",
                                 "lp/v1/agent/a/cmd/Bad Type", "lp/v1/agent/a/cmd", "lp/v1/zone/a/cmd/x",
                                 "lp/v1/agent/../status", "", "lp/v1/agent/a/status/extra"])
def test_bad_topics_are_refused(bad: str) -> None:
    with pytest.raises(ProtocolError):
        parse_topic(bad)


@pytest.mark.parametrize("bad_id", ["", "A", "a/b", "a+b", "#", "a" * 64, "-a", "loa 01"])
def test_ids_are_validated_before_use(bad_id: str) -> None:
    with pytest.raises(ProtocolError):
        Topics.status(bad_id)


def test_signed_command_verifies(signer: Signer) -> None:
    env = signer.command("speaker.play", order(priority=Priority.EMERGENCY), to="loa-01", ttl_ms=60_000)
    cmd = verifier(signer).verify(env.to_bytes(), parse_topic(Topics.command("loa-01", "speaker.play")))
    assert isinstance(cmd.data, SpeakerPlay) and cmd.data.priority is Priority.EMERGENCY


def test_zone_commands_verify_for_members_only(signer: Signer) -> None:
    env = signer.command("speaker.play", order(), to="zone:khu-pho-1", ttl_ms=60_000)
    verifier(signer).verify(env.to_bytes())
    with pytest.raises(ProtocolError, match="wrong_target"):
        verifier(signer, zones=("khu-pho-2",)).verify(env.to_bytes())


def test_one_envelope_for_several_zones_and_for_everyone(signer: Signer) -> None:
    env = signer.command("speaker.play", order(), to=zone_target(["khu-pho-1", "cho"]), ttl_ms=60_000)
    assert env.to == "zone:khu-pho-1,cho"
    both = verifier(signer, zones=("khu-pho-1", "cho"))
    both.verify(env.to_bytes(), parse_topic(Topics.group_command("cho", "speaker.play")))
    # The same envelope on its other zone's topic is a copy: refused as a replay, so the agent acts once.
    with pytest.raises(ProtocolError, match="replayed"):
        both.verify(env.to_bytes(), parse_topic(Topics.group_command("khu-pho-1", "speaker.play")))
    # Not on a topic of a zone it does not name, nor on an agent's own topic.
    for topic in (Topics.group_command("khu-pho-2", "speaker.play"), Topics.command("loa-01", "speaker.play")):
        with pytest.raises(ProtocolError, match="wrong_target"):
            verifier(signer, zones=("khu-pho-1", "khu-pho-2")).verify(env.to_bytes(), parse_topic(topic))
    with pytest.raises(ProtocolError, match="wrong_target"):
        verifier(signer, zones=("khu-pho-2",)).verify(env.to_bytes())
    everyone = signer.command("speaker.play", order(), to=zone_target([ALL_ZONE]), ttl_ms=60_000)
    verifier(signer, zones=()).verify(everyone.to_bytes(), parse_topic(Topics.group_command("all", "speaker.play")))
    assert "lp/v1/group/all/cmd/+" in Topics.agent_subscriptions("loa-01", [])
    assert target_zones("zone:a,B") == frozenset() and target_zones("loa-01") == frozenset()
    with pytest.raises(ProtocolError, match="bad_target"):
        zone_target([])


def test_an_attachment_must_be_the_media_the_signed_data_names(signer: Signer) -> None:
    audio = bytes(range(256)) * 4
    play = order(sha256=hashlib.sha256(audio).hexdigest(), size=len(audio))
    env = signer.command("speaker.play", play, to="loa-01", ttl_ms=60_000, attachment=audio)
    # The attachment is outside the signed bytes: the signature covers it through data.sha256.
    assert env.signing_bytes() == env.model_copy(update={"att": None}).signing_bytes()
    assert verifier(signer).verify(env.to_bytes()).attachment == audio
    plain = signer.command("speaker.play", play, to="loa-01", ttl_ms=60_000)
    assert verifier(signer).verify(plain.to_bytes()).attachment is None

    def tampered(att: str) -> bytes:
        wire = json.loads(env.to_bytes())
        wire["att"] = att
        return json.dumps(wire).encode()

    other = bytes(reversed(audio))
    for att in (base64.b64encode(other).decode(), base64.b64encode(audio[:-1]).decode(), "!!!!"):
        v = verifier(signer)
        with pytest.raises(ProtocolError, match="bad_attachment"):
            v.verify(tampered(att))
        v.verify(env.to_bytes())  # a spoilt copy does not burn the genuine command's id
    with pytest.raises(ProtocolError, match="bad_attachment"):  # only types that name media carry one
        signer.command("speaker.stop", SpeakerStop(), to="loa-01", ttl_ms=60_000, attachment=audio)
    with pytest.raises(ProtocolError, match="bad_attachment"):  # nor does the controller send a wrong one
        signer.command("speaker.play", play, to="loa-01", ttl_ms=60_000, attachment=other)
    with pytest.raises(ProtocolError, match="bad_envelope"):
        parse_envelope(tampered("A" * ((ATTACHMENT_MAX_BYTES + 2) // 3 * 4 + 4)))


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda w: w.update(data={**w["data"], "priority": "emergency"}), "bad_signature"),
    (lambda w: w.update(to="loa-02"), "bad_signature"),
    (lambda w: w.update(exp=w["exp"] + 10**9), "bad_signature"),
    (lambda w: w.update(sig="A" * 86), "bad_signature"),
    (lambda w: w.update(sig="!!!"), "bad_signature"),
    (lambda w: w.pop("sig"), "unsigned"),
    (lambda w: w.update(extra=1), "bad_envelope"),
    (lambda w: w.update(v=2), "bad_envelope"),
])
def test_tampering_is_detected(signer: Signer, mutate: object, reason: str) -> None:
    wire = signer.command("speaker.play", order(), to="loa-01", ttl_ms=60_000).wire()
    assert callable(mutate)
    mutate(wire)
    with pytest.raises(ProtocolError) as err:
        verifier(signer).verify(json.dumps(wire).encode())
    assert err.value.reason == reason


def test_forged_key_wrong_target_expiry_and_replay(signer: Signer) -> None:
    forged = Signer(Ed25519PrivateKey.generate()).command("speaker.play", order(), to="loa-01", ttl_ms=60_000)
    with pytest.raises(ProtocolError, match="bad_signature"):
        verifier(signer).verify(forged.to_bytes())
    other = signer.command("speaker.play", order(), to="loa-02", ttl_ms=60_000)
    with pytest.raises(ProtocolError, match="wrong_target"):
        verifier(signer).verify(other.to_bytes())
    old = signer.command("speaker.play", order(), to="loa-01", ttl_ms=1000, ts=now_ms() - 5000)
    with pytest.raises(ProtocolError, match="expired"):
        verifier(signer).verify(old.to_bytes())
    future = signer.command("speaker.play", order(), to="loa-01", ttl_ms=1000, ts=now_ms() + 3_600_000)
    with pytest.raises(ProtocolError, match="from_future"):
        verifier(signer).verify(future.to_bytes())
    v = verifier(signer)
    fresh = signer.command("speaker.play", order(), to="loa-01", ttl_ms=60_000)
    v.verify(fresh.to_bytes())
    with pytest.raises(ProtocolError, match="replayed"):
        v.verify(fresh.to_bytes())


def test_a_forgery_does_not_burn_the_real_id(signer: Signer) -> None:
    v = verifier(signer)
    real = signer.command("speaker.play", order(), to="loa-01", ttl_ms=60_000)
    forged = Signer(Ed25519PrivateKey.generate()).command("speaker.play", order(), to="loa-01", ttl_ms=60_000,
                                                          msg_id=real.id)
    with pytest.raises(ProtocolError, match="bad_signature"):
        v.verify(forged.to_bytes())
    v.verify(real.to_bytes())


def test_signed_but_invalid_data_is_refused(signer: Signer) -> None:
    env = signer.command("speaker.play", order(), to="loa-01", ttl_ms=60_000)
    wire = env.wire()
    wire["data"]["sha256"] = "not-a-hash"
    resigned = Signer.__new__(Signer)
    resigned._key = signer._key  # type: ignore[attr-defined]
    from devices.protocol import Envelope

    unsigned = Envelope.model_validate({k: v for k, v in wire.items() if k != "sig"})
    import base64

    sig = base64.urlsafe_b64encode(signer._key.sign(unsigned.signing_bytes())).decode().rstrip("=")  # type: ignore[attr-defined]
    bad = unsigned.model_copy(update={"sig": sig})
    with pytest.raises(ProtocolError, match="bad_data"):
        verifier(signer).verify(bad.to_bytes())


def test_signer_refuses_mismatched_models(signer: Signer) -> None:
    with pytest.raises(ProtocolError):
        signer.command("speaker.play", EventsAck(ids=["a"]), to="loa-01", ttl_ms=1000)


@given(st.binary(max_size=2000))
def test_verifier_never_crashes_on_arbitrary_bytes(payload: bytes) -> None:
    v = Verifier(Ed25519PrivateKey.generate().public_key(), "loa-01", [], Seen())
    with pytest.raises(ProtocolError):
        v.verify(payload)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                    max_leaves=20))
def test_verifier_never_crashes_on_arbitrary_json(obj: object) -> None:
    v = Verifier(Ed25519PrivateKey.generate().public_key(), "loa-01", [], Seen())
    with pytest.raises(ProtocolError):
        v.verify(json.dumps(obj).encode())


def test_events_carry_their_sender() -> None:
    data = PlayStarted(play_id="p" * 10, sha256=SHA, priority=Priority.NORMAL, scheduled_start=1, actual_start=2,
                       output="file")
    env = make_event("loa-01", "play.started", data)
    assert env.wire()["from"] == "loa-01"
    _, parsed = parse_event(env.to_bytes(), parse_topic(Topics.event("loa-01", "play.started")))
    assert parsed == data
    with pytest.raises(ProtocolError, match="wrong_sender"):
        parse_event(env.to_bytes(), parse_topic(Topics.event("loa-02", "play.started")))


def test_public_key_text_round_trip(signer: Signer) -> None:
    text = public_key_to_text(signer.public_key)
    assert public_key_to_text(public_key_from_text(text)) == text
    with pytest.raises(ValueError):
        public_key_from_text("not a key")


def test_signing_bytes_are_canonical(signer: Signer) -> None:
    env = signer.command("speaker.play", order(title="Thông báo"), to="loa-01", ttl_ms=60_000)
    raw = env.signing_bytes()
    assert "Thông báo".encode() in raw  # UTF-8, not \\u escapes
    body = json.loads(raw)
    assert "sig" not in body and list(body) == sorted(body)
    assert b" " not in raw.replace("Thông báo".encode(), b"")


def test_docs_describe_every_type_and_topic() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name in (*COMMAND_MODELS, *EVENT_MODELS):
        assert f"`{name}`" in text, f"docs/protocol.md does not describe {name}"
    for pattern in ("lp/v1/agent/{id}/status", "lp/v1/agent/{id}/info", "lp/v1/agent/{id}/state",
                    "lp/v1/agent/{id}/cmd/{type}", "lp/v1/group/{zone}/cmd/{type}", "lp/v1/agent/{id}/event/{type}",
                    "lp/v1/agent/{id}/reply", "lp/v1/controller/status"):
        assert pattern in text, f"docs/protocol.md does not list {pattern}"
    for model in (*COMMAND_MODELS.values(), *EVENT_MODELS.values()):
        for field in model.model_fields:
            assert re.search(rf"`{field}`", text), f"docs/protocol.md misses field {model.__name__}.{field}"
