"""The agent's camera finder: WS-Discovery probes on the agent's LAN, reported as ``camera.discovered``.

Probes run on a thread of their own (a blocking UDP socket), never on the event loop: a signed
``camera.discover`` command or the ``[cameras] discover_interval_s`` timer asks for one, the worker
probes, and the result goes out through the agent's on-disk event outbox, so a dropped link delays the
report but does not lose it. Only discovery happens here; reading a camera over ONVIF, and the
camera's password, stay in the controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import select
import socket
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from devices.camera.discovery import MAX_REPLY_BYTES, MULTICAST_GROUP, PORT, ProbeResult, build_probe, new_message_id
from devices.protocol import MAX_CAMERAS_PER_EVENT, AgentError, CameraDiscovered
from edge_agent.config import CamerasSection
from edge_agent.hooks import EmitFn

log = logging.getLogger(__name__)

#: Answers read per probe at most; a LAN with more ONVIF devices than this is not a ward's.
MAX_REPLIES = 1024
#: SOAP-over-UDP sends a multicast message more than once, since UDP may drop it.
PROBE_REPEATS = 2
_REPEAT_GAP_S = 0.1
#: Pending requests beyond this are merged into the ones already waiting.
_QUEUE_LIMIT = 8


class DiscoveryError(OSError):
    """The probe could not be sent (no network, no multicast route…)."""


# Linux interface flags and ioctls (linux/if.h, linux/sockios.h): enough to list LAN addresses with the
# standard library alone, so the agent needs no netifaces/psutil.
_IFF_UP, _IFF_LOOPBACK, _IFF_POINTOPOINT, _IFF_MULTICAST = 0x1, 0x8, 0x10, 0x1000
_SIOCGIFFLAGS, _SIOCGIFADDR = 0x8913, 0x8915


def lan_addresses() -> list[str]:
    """IPv4 addresses of the interfaces a camera can sit behind: up, multicast-capable, not loopback and
    not point-to-point (a 3G/4G modem or a VPN tunnel). Empty when they cannot be listed (not Linux)."""
    if not sys.platform.startswith("linux"):
        return []
    import fcntl

    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            packed = struct.pack("256s", name.encode()[:15])
            try:
                flags = struct.unpack_from("H", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, packed), 16)[0]
                if not flags & _IFF_UP or flags & (_IFF_LOOPBACK | _IFF_POINTOPOINT) or not flags & _IFF_MULTICAST:
                    continue
                addr = socket.inet_ntoa(fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, packed)[20:24])
            except OSError:  # no IPv4 address, or gone meanwhile
                continue
            if addr not in found:
                found.append(addr)
    return found


def probe_lan(timeout_s: float, *, interface: str | None = None, ttl: int = 1,
              max_replies: int = MAX_REPLIES, stop: threading.Event | None = None) -> ProbeResult:
    """Sends a WS-Discovery Probe to 239.255.255.250:3702 and collects answers for ``timeout_s``.

    Blocking; call it on a worker thread. ``interface`` is the local IPv4 address to probe from; when
    None the probe leaves by every LAN interface (:func:`lan_addresses`) — not by the routing table's
    choice, which on a Pi with a 4G uplink is the modem — or, if there is none, as the routing table
    says. ``ttl`` 1 keeps the probe on the local segment; setting ``stop`` ends the wait early.
    """
    message_id = new_message_id()
    probe = build_probe(message_id)
    result = ProbeResult()
    sources: list[str | None] = [interface] if interface else [*lan_addresses()] or [None]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        # Bound to every address: answers come back unicast to this port whichever interface they use.
        sock.bind((interface or "", 0))
        sent, errors = 0, []
        for i in range(PROBE_REPEATS):
            if i:
                time.sleep(_REPEAT_GAP_S)
            for source in sources:
                try:
                    if source:
                        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
                    sock.sendto(probe, (MULTICAST_GROUP, PORT))
                    sent += 1
                except OSError as exc:
                    errors.append(f"{source or 'default route'}: {exc.strerror or exc}")
        if not sent:
            raise DiscoveryError(errno.ENETUNREACH, f"cannot send the WS-Discovery probe ({'; '.join(errors[:4])})")
        for err in dict.fromkeys(errors):
            log.info("probe not sent from %s", err)
        deadline = time.monotonic() + timeout_s
        replies = 0
        while replies < max_replies and not (stop is not None and stop.is_set()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = select.select([sock], [], [], min(remaining, 0.25))
            if not ready:
                continue
            try:
                data, addr = sock.recvfrom(MAX_REPLY_BYTES + 1)
            except OSError as exc:  # e.g. an ICMP error surfaced on the socket; keep listening
                log.debug("discovery socket: %s", exc)
                continue
            replies += 1
            result.add_reply(data, str(addr[0]), message_id)
    finally:
        sock.close()
    return result


class CameraFinder:
    """Runs probes one at a time on its own thread and emits what they find."""

    def __init__(self, cfg: CamerasSection, emit: EmitFn) -> None:
        self.cfg = cfg
        self._emit = emit
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="camera-finder")
        self._requests: asyncio.Queue[tuple[int, str | None]] = asyncio.Queue(maxsize=_QUEUE_LIMIT)
        self._stop = threading.Event()
        self.rounds = 0

    def request(self, timeout_ms: int, ref: str | None) -> None:
        """Asks for a probe (a command's id as ``ref``); answered by a ``camera.discovered`` event."""
        try:
            self._requests.put_nowait((timeout_ms, ref))
        except asyncio.QueueFull:
            # Plenty are waiting already; their results will answer this one's question too.
            log.warning("camera discovery requests are piling up; dropped request %s", ref)

    async def run(self) -> None:
        """Serves requests, and probes every ``discover_interval_s`` if that is set. Runs until cancelled."""
        interval = self.cfg.discover_interval_s
        next_periodic = time.monotonic() + 5.0 if interval else None  # a first look soon after start
        # One pending get() kept across rounds: a timed-out wait must not lose a request it half took.
        getter: asyncio.Task[tuple[int, str | None]] | None = None
        try:
            while True:
                if getter is None:
                    getter = asyncio.ensure_future(self._requests.get())
                wait = None if next_periodic is None else max(0.0, next_periodic - time.monotonic())
                done, _ = await asyncio.wait({getter}, timeout=wait)
                if getter in done:
                    timeout_ms, ref = getter.result()
                    getter = None
                else:
                    timeout_ms, ref = self.cfg.probe_timeout_ms, None
                    assert interval is not None
                    next_periodic = time.monotonic() + interval
                try:
                    await self.discover(timeout_ms, ref)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("camera discovery round failed; carrying on")
        finally:
            if getter is not None:
                getter.cancel()

    async def discover(self, timeout_ms: int, ref: str | None) -> None:
        """One probe round on the worker thread, reported as ``camera.discovered`` (or an ``error`` event)."""
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(
                self._executor,
                lambda: probe_lan(timeout_ms / 1000, interface=self.cfg.interface, ttl=self.cfg.ttl, stop=self._stop))
        except DiscoveryError as exc:
            log.warning("camera discovery failed: %s", exc)
            await self._emit("error", AgentError(code="camera_discovery", message=str(exc)[:1000], ref=ref))
            return
        self.rounds += 1
        cameras = sorted(result.cameras.values(), key=lambda c: c.endpoint)
        for reason in result.skipped[:10]:
            log.info("discovery answer skipped: %s", reason)
        log.info("camera discovery%s: %d camera(s), %d answer(s) skipped", f" for {ref}" if ref else "",
                 len(cameras), len(result.skipped))
        chunks = [cameras[i:i + MAX_CAMERAS_PER_EVENT] for i in range(0, len(cameras), MAX_CAMERAS_PER_EVENT)]
        chunks = chunks[:100] or [[]]
        for part, chunk in enumerate(chunks, start=1):
            await self._emit("camera.discovered", CameraDiscovered(cameras=chunk, ref=ref, part=part,
                                                                   parts=len(chunks), skipped=len(result.skipped)))

    def close(self) -> None:
        """Stops the worker thread; a probe in flight stops waiting within a quarter of a second."""
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._executor.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m edge_agent.camera_finder``: one WS-Discovery probe on this machine's LAN, printed as JSON.

    For a technician on the Pi; it multicasts on the real network, which is what it is for.
    """
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m edge_agent.camera_finder",
                                     description="Probe the LAN for ONVIF cameras (WS-Discovery) and print them.")
    parser.add_argument("--timeout-ms", type=int, default=3000)
    parser.add_argument("--interface", default=None, help="local IPv4 address to probe from")
    parser.add_argument("--ttl", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        cfg = CamerasSection(probe_timeout_ms=args.timeout_ms, interface=args.interface, ttl=args.ttl)
    except ValueError as exc:  # pydantic's ValidationError names the bad option
        parser.error(str(exc))
    try:
        result = probe_lan(cfg.probe_timeout_ms / 1000, interface=cfg.interface, ttl=cfg.ttl)
    except DiscoveryError as exc:
        print(json.dumps({"error": "camera_discovery", "message": str(exc)}))
        return 2
    print(json.dumps({"cameras": [c.model_dump() for c in result.cameras.values()], "skipped": result.skipped},
                     ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
