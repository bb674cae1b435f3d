"""Instruments for bench/live_delay.py: where a live burst is at each hop, timed on this machine's clock.

- :class:`OggTap` collects an Ogg stream's bytes as they arrive and, afterwards, says when the page
  holding a given sample arrived (Opus granule positions count 48 kHz samples, pre-skip included).
- :class:`SourceTap` is a TCP relay between the controller's encoder and Icecast: it forwards every
  connection unchanged and taps the source connection (``PUT /live-….ogg``), so we know when each
  encoded page left the encoder.
- :class:`Listener` is a raw HTTP listener on a mount (an enrolled agent's token), beside the agent:
  when each page left Icecast.
- :func:`measure_snapcast` plays the same PCM through snapserver → snapclient on loopback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from controller.processes import LOOPBACK, wait_for_tcp
from controller.tools.local_stack import free_port

#: Samples per second of every stream here (Opus always counts granules at 48 kHz).
RATE = 48_000


class OggTap:
    """Bytes of one Ogg stream with the wall time each received chunk ended at."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.arrivals: list[tuple[int, float]] = []  # (bytes so far, wall time)
        self._lock = threading.Lock()

    def add(self, chunk: bytes) -> None:
        """Appends a chunk received now."""
        at = time.time()
        with self._lock:
            self.data.extend(chunk)
            self.arrivals.append((len(self.data), at))

    def pages(self) -> list[tuple[int, int, float]]:
        """(page start offset, granule position, wall time its last byte arrived) for every whole page."""
        with self._lock:
            data = bytes(self.data)
            arrivals = list(self.arrivals)
        out: list[tuple[int, int, float]] = []
        pos = data.find(b"OggS")
        idx = 0
        while pos >= 0 and pos + 27 <= len(data):
            nsegs = data[pos + 26]
            if pos + 27 + nsegs > len(data):
                break
            size = 27 + nsegs + sum(data[pos + 27:pos + 27 + nsegs])
            end = pos + size
            if end > len(data):
                break
            granule = struct.unpack_from("<q", data, pos + 6)[0]
            while arrivals[idx][0] < end:
                idx += 1
            out.append((pos, granule, arrivals[idx][1]))
            pos = data.find(b"OggS", end)
        return out

    def first_page_at(self) -> float:
        """When the first audio page (after the two Opus header pages) arrived; NaN if none did."""
        pages = self.pages()
        return pages[2][2] if len(pages) > 2 else float("nan")

    def pre_skip(self) -> int:
        """The Opus pre-skip from the OpusHead packet (samples the decoder drops at the start)."""
        with self._lock:
            at = self.data.find(b"OpusHead")
            return struct.unpack_from("<H", self.data, at + 10)[0] if at >= 0 else 0

    def when_sample_arrived(self, sample: int) -> float | None:
        """Wall time at which the page holding stream sample ``sample`` (0 = first sample encoded) arrived."""
        skip = self.pre_skip()
        for _pos, granule, at in self.pages():
            if granule >= 0 and granule - skip > sample:
                return at
        return None

    def body_after_headers(self) -> bytes:
        """The stream from its first Ogg page (drops the HTTP head)."""
        with self._lock:
            start = self.data.find(b"OggS")
            return bytes(self.data[start:]) if start >= 0 else b""


def _pump(src: socket.socket, dst: socket.socket, tap: Callable[[bytes], None] | None) -> None:
    with contextlib.suppress(OSError):
        while chunk := src.recv(65536):
            if tap is not None:
                tap(chunk)
            dst.sendall(chunk)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


class SourceTap:
    """A loopback TCP relay in front of Icecast that taps the source connection of ``/live-…`` mounts."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.server = socket.create_server((LOOPBACK, 0))
        self.port: int = self.server.getsockname()[1]
        self.taps: dict[str, OggTap] = {}
        self._socks: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, name="source-tap", daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.server.accept()
                threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection((LOOPBACK, self.upstream_port))
        self._socks += [client, upstream]
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        first = client.recv(65536)
        tap: OggTap | None = None
        line = first.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) >= 2 and parts[0] in ("PUT", "SOURCE") and parts[1].startswith("/live-"):
            tap = self.taps[parts[1]] = OggTap()
            tap.add(first)
        upstream.sendall(first)
        threading.Thread(target=_pump, args=(upstream, client, None), daemon=True).start()
        _pump(client, upstream, tap.add if tap is not None else None)

    def close(self) -> None:
        """Closes the listening socket and every relayed connection."""
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.close()


class Listener:
    """A raw HTTP listener on an Icecast mount, reading as fast as Icecast sends."""

    def __init__(self, url: str) -> None:
        rest = url.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        self.tap = OggTap()
        self.status = ""
        self._sock = socket.create_connection((host, int(port)), timeout=10)
        self._sock.sendall(f"GET /{path} HTTP/1.0\r\nHost: {hostport}\r\nUser-Agent: lp-bench-probe\r\n\r\n".encode())
        self._thread = threading.Thread(target=self._read, name="probe-listener", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError):
            while chunk := self._sock.recv(65536):
                if not self.status:
                    self.status = chunk.split(b"\r\n", 1)[0].decode("latin-1")
                self.tap.add(chunk)

    def close(self) -> None:
        """Hangs up."""
        with contextlib.suppress(OSError):
            self._sock.close()
        self._thread.join(5)


def decode_ogg(data: bytes, timeout: float = 60) -> list[int]:
    """Decodes an Ogg Opus stream with ffmpeg to 48 kHz mono samples (to check the bursts are in it)."""
    out = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "ogg", "-i", "pipe:0",
                          "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-"], input=data, capture_output=True,
                         timeout=timeout, check=False)
    raw = out.stdout[:len(out.stdout) // 2 * 2]
    return list(struct.unpack(f"<{len(raw) // 2}h", raw))


# ------------------------------------------------------------------------------------------- Snapcast


def snapcast_missing() -> str | None:
    """None if snapserver and snapclient are installed, else how to get them."""
    missing = [tool for tool in ("snapserver", "snapclient") if shutil.which(tool) is None]
    if not missing:
        return None
    return f"{' and '.join(missing)} not installed (apt-get install -y snapserver snapclient, or --install-snapcast)"


def install_snapcast() -> None:
    """apt-get installs Snapcast (Debian's packages; not part of the project's set-up)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "snapserver", "snapclient"],
                   check=True, timeout=600, env=env, stdout=subprocess.DEVNULL)


def measure_snapcast(root: Path, pcm: bytes, frame_bytes: int,
                     send_paced: Callable[[Callable[[bytes], None], bytes], dict[int, float]]
                     ) -> tuple[list[int], list[tuple[float, int]], dict[int, float]]:
    """Plays ``pcm`` through snapserver (pipe source, default 1,000 ms buffer) to a snapclient writing
    what it plays to stdout; returns the played samples, (wall time, samples so far) per chunk the
    client wrote, and the wall time each frame was written to the pipe (by byte offset).
    """
    root.mkdir(parents=True, exist_ok=True)
    fifo = root / "snapfifo"
    os.mkfifo(fifo)
    port = free_port()
    server_log = (root / "snapserver.log").open("wb")
    client_log = (root / "snapclient.log").open("wb")
    # Our own config file: Debian's /etc/snapserver.conf declares a default source the client would join.
    # Everything else (codec flac, buffer 1000 ms, 20 ms chunks) stays at Snapcast's defaults.
    conf = root / "snapserver.conf"
    conf.write_text(f"[server]\ndatadir = {root}\n[http]\nenabled = false\n[tcp]\nenabled = false\n"
                    f"[stream]\nbind_to_address = {LOOPBACK}\nport = {port}\n"
                    f"source = pipe://{fifo}?name=bench&sampleformat={RATE}:16:1&mode=read\n"
                    f"[logging]\nsink = stderr\n", encoding="utf-8")
    server = subprocess.Popen(["snapserver", "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=server_log,
                              stderr=server_log)
    client: subprocess.Popen[bytes] | None = None
    pipe = -1
    try:
        wait_for_tcp(port, 10)
        pipe = os.open(fifo, os.O_WRONLY)
        client = subprocess.Popen(["snapclient", "-h", LOOPBACK, "-p", str(port), "--hostID", "lp-bench",
                                   "--player", "file:filename=stdout", "--logsink", "stderr"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=client_log)
        got = bytearray()
        arrivals: list[tuple[float, int]] = []

        def read() -> None:
            assert client is not None and client.stdout is not None
            while chunk := client.stdout.read1(65536):  # type: ignore[attr-defined]
                arrivals.append((time.time(), (len(got) + len(chunk)) // 2))
                got.extend(chunk)

        reader = threading.Thread(target=read, name="snapclient-out", daemon=True)
        reader.start()
        # Three seconds of silence first: the client connects, syncs its clock and fills its buffer.
        silence = bytes(frame_bytes * 150)
        send_paced(lambda b: _write_all(pipe, b), silence)
        sent = send_paced(lambda b: _write_all(pipe, b), pcm)
        time.sleep(2.0)  # the buffer's worth of the tail
        samples = list(struct.unpack(f"<{len(got) // 2}h", bytes(got[:len(got) // 2 * 2])))
        return samples, arrivals, sent
    finally:
        if pipe >= 0:
            os.close(pipe)
        for proc in (client, server):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        server_log.close()
        client_log.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
