"""A real H.264 RTSP camera stream for tests and benches: GStreamer's RTSP server in a child process.

Run as a script it serves ``videotestsrc`` (x264, 640x360, 15 fps by default) at
``rtsp://127.0.0.1:{port}/{path}`` and takes commands on stdin, one a line, each answered on stdout:

    pattern NAME   switch every running source to a videotestsrc pattern (smpte, black, white, ball, snow…)
    quit           stop

``pattern`` answers ``ok {unix time the change was applied}``, which benches use as the source time of
a scene change. The process ends by itself after ``--max-seconds`` so a lost parent never leaves it
running. :class:`RtspServer` starts it, talks to it and always stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

LOOPBACK = "127.0.0.1"
DEFAULT_PATH = "cam"


class RtspServer:
    """A GStreamer RTSP server child process that can be stopped, restarted and steered."""

    def __init__(self, port: int, log_path: Path, *, path: str = DEFAULT_PATH, pattern: str = "smpte",
                 width: int = 640, height: int = 360, fps: int = 15, max_seconds: int = 600) -> None:
        self.port = port
        self.path = path
        self.log_path = log_path
        self.args = ["--port", str(port), "--path", path, "--pattern", pattern, "--width", str(width),
                     "--height", str(height), "--fps", str(fps), "--max-seconds", str(max_seconds)]
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Where the stream is served (no credentials: the server asks for none)."""
        return f"rtsp://{LOOPBACK}:{self.port}/{self.path}"

    def start(self, timeout: float = 15.0) -> None:
        """Starts the server and waits until it accepts connections."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *self.args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"RTSP server exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"RTSP server not listening on {self.port} after {timeout}s")

    def command(self, line: str, timeout: float = 5.0) -> str:
        """Sends one command and returns the server's answer line."""
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"RTSP server did not answer {line!r}")
        return self.proc.stdout.readline().decode().strip()

    def set_pattern(self, pattern: str) -> float:
        """Switches the source's pattern; returns when (unix time) the server applied it."""
        answer = self.command(f"pattern {pattern}")
        if not answer.startswith("ok "):
            raise RuntimeError(f"RTSP server refused pattern {pattern!r}: {answer}")
        return float(answer.split()[1])

    @property
    def alive(self) -> bool:
        """True while the child runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Kills the server (SIGKILL: a camera that drops off the network says goodbye to no one)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout)
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        """What the server wrote to stderr."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> RtspServer:
        """Started (and killed again if it does not come up); :meth:`stop` when the ``with`` ends."""
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------ the child process


def _serve(ns: argparse.Namespace) -> int:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    loop = GLib.MainLoop()
    sources: list[Any] = []
    current = {"pattern": ns.pattern}

    launch = (f"( videotestsrc name=src is-live=true pattern={ns.pattern} "
              f"! video/x-raw,width={ns.width},height={ns.height},framerate={ns.fps}/1 "
              f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={ns.fps} "
              f"! rtph264pay name=pay0 pt=96 config-interval=1 )")
    server = GstRtspServer.RTSPServer()
    server.set_address(LOOPBACK)
    server.set_service(str(ns.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)

    def configured(_factory: Any, media: Any) -> None:
        src = media.get_element().get_by_name("src")
        src.set_property("pattern", current["pattern"])
        sources.append(src)

    factory.connect("media-configure", configured)
    server.get_mount_points().add_factory(f"/{ns.path}", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on {LOOPBACK}:{ns.port}", file=sys.stderr)
        return 1

    def on_stdin(_fd: int, _cond: Any) -> bool:
        line = sys.stdin.readline()
        if not line or line.strip() == "quit":
            loop.quit()
            return False
        words = line.split()
        if len(words) == 2 and words[0] == "pattern":
            try:
                for src in sources:
                    Gst.util_set_object_arg(src, "pattern", words[1])
                current["pattern"] = words[1]
                print(f"ok {time.time():.6f}", flush=True)
            except Exception as exc:  # a bad name must not end the server
                print(f"error {exc}", flush=True)
        else:
            print(f"error unknown command {line.strip()!r}", flush=True)
        return True

    GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP, on_stdin)
    GLib.timeout_add_seconds(ns.max_seconds, loop.quit)
    print(f"serving rtsp://{LOOPBACK}:{ns.port}/{ns.path}", file=sys.stderr, flush=True)
    loop.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default=DEFAULT_PATH)
    parser.add_argument("--pattern", default="smpte")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--max-seconds", type=int, default=600)
    ns = parser.parse_args(argv)
    os.environ.setdefault("GST_DEBUG", "1")
    return _serve(ns)


if __name__ == "__main__":
    sys.exit(main())
