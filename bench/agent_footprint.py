#!/usr/bin/env python3
"""Agent footprint: peak RSS and CPU of one agent, idle and then playing, next to the raw tools.

Starts Mosquitto, the controller and one agent (file-sink output) on 127.0.0.1 in a temp dir with
:mod:`controller.local_stack`, then measures the agent's process tree from ``/proc``:

* **idle** — the agent connected and idle for ``--idle-seconds`` (default 60). Measured in the same
  window: ``mosquitto_sub`` subscribed to the agent's command topics (what a C MQTT client costs to sit
  idle) and ``python -c "import time; time.sleep(N)"`` (the interpreter's floor).
* **prepare** — from posting a long Vietnamese announcement until its delivery reaches ``playing``
  (download and decode by the agent's ffmpeg child), sampled faster to catch that short child.
* **playing** — from ``playing`` until ``played``. Measured alongside it: ``ffmpeg -re`` decoding the same
  stored media in real time (what a bare player costs), started when playback starts.

RSS is the sum of VmRSS over the process and its descendants (found by walking ``/proc/*/stat``),
sampled every ``--interval`` s; when the main process's VmHWM rose during a window, that exact peak is
used too (VmHWM is also used for the raw tools, whose whole life is their window). CPU is
utime+stime (plus cutime+cstime, so reaped children count) over wall time, in percent of one core.

Targets (issue: Pi Zero 2 W, 512 MB): agent RSS ≤ 80 MB in every phase, idle CPU ≤ 1 % of a core.
It is a report: the exit code is 0 whether the targets pass or fail, nonzero only when the run broke.

    .venv/bin/python bench/agent_footprint.py [--idle-seconds 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from controller.local_stack import (
    LOOPBACK,
    ManagedProcess,
    free_port,
    http_json,
    register_agent,
    start_agent,
    start_controller,
    start_mosquitto,
    write_agent_config,
)

AGENT_ID = "bench"
ZONES = ("khu-pho-1",)
TARGET_RSS_MB = 80.0
TARGET_IDLE_CPU_PCT = 1.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
TERMINAL_DELIVERY = frozenset({"played", "preempted", "stopped", "expired", "failed", "rejected"})

#: A realistic ward notice (~1,500 characters; the controller's default limit is 5,000).
NOTICE = (
    "Thông báo của Ủy ban nhân dân phường. Kính thưa toàn thể bà con nhân dân trong phường, "
    "Ủy ban nhân dân phường xin thông báo một số nội dung quan trọng như sau. "
    "Thứ nhất, về lịch tạm ngừng cung cấp điện: để bảo dưỡng đường dây và trạm biến áp, "
    "khu phố một, khu phố hai và khu phố ba sẽ tạm ngừng cấp điện từ bảy giờ sáng đến mười một giờ trưa "
    "ngày thứ Bảy tuần này. Đề nghị bà con chủ động sắp xếp công việc, sạc sẵn đèn và quạt, "
    "rút phích cắm các thiết bị điện trước giờ cắt điện để bảo đảm an toàn. "
    "Thứ hai, về phòng chống sốt xuất huyết: hiện nay số ca mắc trên địa bàn có chiều hướng tăng. "
    "Mỗi gia đình hãy dành mười phút mỗi tuần để lật úp các vật dụng chứa nước, thay nước bình hoa, "
    "thả cá bảy màu vào lu, khạp và ngủ màn kể cả ban ngày. Khi có người bị sốt cao liên tục, "
    "đau đầu, đau mỏi người, hãy đến ngay trạm y tế phường để được khám và hướng dẫn điều trị kịp thời. "
    "Thứ ba, về phòng chống bão lũ: theo dự báo của cơ quan khí tượng, trong những ngày tới "
    "có thể có mưa lớn kèm gió giật mạnh. Bà con kiểm tra, gia cố nhà cửa, chằng chống mái tôn, "
    "cắt tỉa cành cây gần nhà và đường dây điện, không đi qua những đoạn đường ngập sâu, nước chảy xiết. "
    "Thứ tư, về an ninh trật tự: đề nghị bà con nâng cao cảnh giác với các cuộc gọi lừa đảo "
    "mạo danh cơ quan công an, ngân hàng hay điện lực; tuyệt đối không cung cấp mã xác thực, "
    "không chuyển tiền cho người lạ. Khi phát hiện dấu hiệu nghi vấn, hãy báo ngay cho công an phường. "
    "Ủy ban nhân dân phường trân trọng cảm ơn sự quan tâm và phối hợp của toàn thể bà con."
)


def log(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- sampling


@dataclass(frozen=True, slots=True)
class Sample:
    """One look at a process tree."""

    t: float  #: time.monotonic()
    rss_kb: int  #: VmRSS summed over the tree
    root_rss_kb: int  #: VmRSS of the tree's root alone
    ticks: int  #: utime+stime+cutime+cstime summed over the tree
    hwm_kb: int  #: VmHWM of the tree's root
    procs: int  #: processes in the tree


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid → (ppid, utime+stime+cutime+cstime ticks) for every process this user can see."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue  # it exited meanwhile
        # The command name may hold spaces and parentheses: the fields start after the last ")".
        fields = raw[raw.rindex(b")") + 2:].split()
        # fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
        table[int(entry)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    return table


def _memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB; zeros for a zombie or a process that is gone."""
    rss = hwm = 0
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm


def _descendants(root: int, table: dict[int, tuple[int, int]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [root], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class TreeSampler:
    """A background thread sampling named process trees every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.samples: dict[str, list[Sample]] = {}
        self._roots: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)

    def start(self) -> None:
        """Starts sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stops sampling (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def watch(self, name: str, pid: int) -> Sample | None:
        """Adds a tree and samples it at once."""
        with self._lock:
            self._roots[name] = pid
            self.samples.setdefault(name, [])
        return self.mark(name)

    def unwatch(self, name: str) -> None:
        """Stops sampling a tree (its samples stay)."""
        with self._lock:
            self._roots.pop(name, None)

    def mark(self, name: str) -> Sample | None:
        """Samples one tree now, e.g. at a window's edge; None if its root is gone."""
        with self._lock:
            pid = self._roots.get(name)
            return None if pid is None else self._take(name, pid, _proc_table())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                table = _proc_table()
                for name, pid in self._roots.items():
                    self._take(name, pid, table)

    def _take(self, name: str, pid: int, table: dict[int, tuple[int, int]]) -> Sample | None:
        if pid not in table:
            return None
        pids = _descendants(pid, table)
        rss = root_rss = hwm = 0
        for p in pids:
            p_rss, p_hwm = _memory_kb(p)
            rss += p_rss
            if p == pid:
                root_rss, hwm = p_rss, p_hwm
        if hwm == 0:  # a zombie root: nothing to measure any more
            return None
        sample = Sample(time.monotonic(), rss, root_rss, sum(table[p][1] for p in pids if p in table), hwm,
                        len(pids))
        self.samples[name].append(sample)
        return sample


@dataclass
class Figures:
    """One row of the report."""

    phase: str
    process: str
    peak_rss_mb: float
    mean_cpu_pct: float
    main_peak_rss_mb: float  #: the root process alone, without children
    seconds: float
    samples: int
    max_procs: int
    target: str = "—"
    verdict: str = "baseline"
    note: str = ""


def window_figures(samples: Sequence[Sample], t0: float, t1: float, phase: str, process: str,
                   whole_life: bool = False) -> Figures:
    """Peak RSS and mean CPU of the samples taken in [t0, t1].

    ``whole_life``: the process lived only for this window, so its VmHWM is its exact peak. Otherwise
    VmHWM counts only if it rose inside the window (it would otherwise carry start-up's peak).
    """
    inside = [s for s in samples if t0 <= s.t <= t1]
    if len(inside) < 2:
        raise RuntimeError(f"{process}: only {len(inside)} sample(s) in the {phase} window")
    first, last = inside[0], inside[-1]
    peak_kb = max(s.rss_kb for s in inside)
    main_kb = max(s.root_rss_kb for s in inside)
    if whole_life or last.hwm_kb > first.hwm_kb:
        peak_kb = max(peak_kb, last.hwm_kb)
        main_kb = max(main_kb, last.hwm_kb)
    seconds = last.t - first.t
    cpu = (last.ticks - first.ticks) / CLK_TCK / seconds * 100 if seconds > 0 else 0.0
    return Figures(phase, process, round(peak_kb / 1024, 1), round(cpu, 2), round(main_kb / 1024, 1),
                   round(seconds, 1), len(inside), max(s.procs for s in inside))


def judge(row: Figures, cpu_target: float | None) -> Figures:
    """Fills an agent row's target and PASS/FAIL."""
    ok = row.peak_rss_mb <= TARGET_RSS_MB
    row.target = f"RSS ≤ {TARGET_RSS_MB:g} MB"
    if cpu_target is not None:
        ok = ok and row.mean_cpu_pct <= cpu_target
        row.target += f", CPU ≤ {cpu_target:g} %"
    row.verdict = "PASS" if ok else "FAIL"
    return row


# ---------------------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    """The running processes and where to reach them."""

    work: Path
    procs: list[ManagedProcess] = field(default_factory=list)
    api: str = ""
    token: str = ""
    data_dir: Path = Path()
    mqtt_port: int = 0
    agent: ManagedProcess | None = None

    def get(self, path: str) -> Any:
        """GET an API path; raises on anything but 200."""
        status, body = http_json("GET", self.api + path, self.token)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body}")
        return body

    def spawn(self, name: str, cmd: Sequence[str]) -> ManagedProcess:
        """Starts a raw-tool process, remembered so it is always stopped."""
        proc = ManagedProcess(name, cmd, self.work / f"{name}.log")
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        """Stops everything, last started first; one failure does not skip the rest."""
        for proc in reversed(self.procs):
            try:
                proc.stop()
            except Exception as exc:  # keep stopping the others
                log(f"could not stop {proc.name}: {exc}")

    def log_tails(self, chars: int = 2000) -> str:
        """The end of every process's log, for an error report."""
        parts = []
        for proc in self.procs:
            try:
                parts.append(f"--- {proc.name} ({proc.log_path}) ---\n{proc.log_text()[-chars:]}")
            except OSError:
                continue
        return "\n".join(parts)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.2) -> Any:
    """Polls until ``predicate`` returns something truthy; raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


def bring_up(stack: Stack) -> None:
    """Mosquitto, controller, one registered agent with a file sink, online."""
    stack.mqtt_port = free_port()
    stack.procs.append(start_mosquitto(stack.work / "mosquitto", stack.mqtt_port))
    http_port = free_port()
    stack.data_dir = stack.work / "controller"
    stack.procs.append(start_controller(stack.data_dir, http_port, stack.mqtt_port, stack.work / "controller.log"))
    stack.api = f"http://{LOOPBACK}:{http_port}"
    stack.token = (stack.data_dir / "admin.token").read_text(encoding="utf-8").strip()
    wait_until(lambda: stack.get("/healthz").get("mqtt") == "connected", 20, "the controller on MQTT")
    registered = register_agent(stack.api, stack.token, AGENT_ID, ZONES, name="footprint benchmark")
    files = write_agent_config(stack.work / "agent", registered, ZONES, output="file")
    stack.agent = start_agent(files, stack.work / "agent.log")
    stack.procs.append(stack.agent)

    def online() -> bool:
        if not stack.agent or not stack.agent.alive:
            raise RuntimeError("the agent exited during start-up")
        return any(d["id"] == AGENT_ID and d["online"] for d in stack.get("/api/v1/devices"))

    wait_until(online, 30, "the agent online")


# ----------------------------------------------------------------------------------------- the phases


def idle_phase(stack: Stack, sampler: TreeSampler, idle_s: float, settle_s: float) -> list[Figures]:
    """The agent idle next to an idle mosquitto_sub and a sleeping interpreter, in one window."""
    assert stack.agent is not None
    mosquitto_sub = shutil.which("mosquitto_sub")
    if mosquitto_sub is None:
        raise FileNotFoundError("mosquitto_sub is not installed (apt-get install mosquitto-clients)")
    sub = stack.spawn("mosquitto_sub", [mosquitto_sub, "-h", LOOPBACK, "-p", str(stack.mqtt_port),
                                        "-t", f"lp/v1/agent/{AGENT_ID}/cmd/#", "-q", "1"])
    sleeper = stack.spawn("python-sleep", [sys.executable, "-c", f"import time; time.sleep({idle_s + settle_s + 60})"])
    sampler.watch("agent", stack.agent.pid)
    sampler.watch("mosquitto_sub", sub.pid)
    sampler.watch("python-sleep", sleeper.pid)
    time.sleep(settle_s)  # the agent's start-up chatter ends; the subscriber connects
    for proc in (stack.agent, sub, sleeper):
        if not proc.alive:
            raise RuntimeError(f"{proc.name} exited with {proc.returncode}:\n{proc.log_text()[-2000:]}")
    log(f"idle window: {idle_s:g} s")
    t0 = time.monotonic()
    for name in ("agent", "mosquitto_sub", "python-sleep"):
        sampler.mark(name)
    time.sleep(idle_s)
    for name in ("agent", "mosquitto_sub", "python-sleep"):
        if sampler.mark(name) is None:
            raise RuntimeError(f"{name} exited during the idle window")
    t1 = time.monotonic()
    for name, proc in (("mosquitto_sub", sub), ("python-sleep", sleeper)):
        sampler.unwatch(name)
        proc.stop()
    return [
        judge(window_figures(sampler.samples["agent"], t0, t1, "idle", "agent"), TARGET_IDLE_CPU_PCT),
        window_figures(sampler.samples["mosquitto_sub"], t0, t1, "idle", "mosquitto_sub -q 1 (C client)",
                       whole_life=True),
        window_figures(sampler.samples["python-sleep"], t0, t1, "idle", "python time.sleep (interpreter)",
                       whole_life=True),
    ]


@dataclass
class PlayResult:
    """What the playing phases measured beyond the rows."""

    rows: list[Figures]
    announcement_id: str
    sha256: str
    duration_ms: int
    start_offset_ms: int | None
    text_chars: int


def play_phase(stack: Stack, sampler: TreeSampler, interval: float, prepare_interval: float) -> PlayResult:
    """Posts the notice; measures prepare (post → playing) and playing (→ played); ffmpeg -re beside it."""
    assert stack.agent is not None
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise FileNotFoundError("ffmpeg is not installed")
    sampler.interval = prepare_interval
    t_post = time.monotonic()
    sampler.mark("agent")
    status, accepted = http_json("POST", f"{stack.api}/api/v1/announcements", stack.token,
                                 {"text": NOTICE, "targets": [AGENT_ID], "priority": "normal"})
    if status != 202:
        raise RuntimeError(f"POST /api/v1/announcements: {status} {accepted}")
    ann_id = accepted["id"]
    log(f"announcement {ann_id} posted ({len(NOTICE)} characters)")

    def delivery() -> dict[str, Any] | None:
        ann = stack.get(f"/api/v1/announcements/{ann_id}")
        if ann["status"] == "failed":
            raise RuntimeError(f"announcement failed: {ann['error']}")
        return ann if ann["deliveries"] else None

    def reached(statuses: set[str]) -> Callable[[], dict[str, Any] | None]:
        def check() -> dict[str, Any] | None:
            ann = delivery()
            if ann is None:
                return None
            d = ann["deliveries"][0]
            if d["status"] in TERMINAL_DELIVERY - statuses:
                raise RuntimeError(f"delivery ended {d['status']}: {d['error']}")
            return ann if d["status"] in statuses else None
        return check

    ann = wait_until(reached({"playing", "played"}), 180, "the delivery to reach playing", poll=0.1)
    t_playing = time.monotonic()
    sampler.mark("agent")
    sampler.interval = interval
    media = ann["media"]
    sha, duration_ms = media["sha256"], int(media["duration_ms"])
    stored = stack.data_dir / "media" / sha[:2] / sha
    if not stored.is_file():
        raise FileNotFoundError(f"stored media not found at {stored}")
    log(f"playing: {duration_ms / 1000:.1f} s of speech; ffmpeg -re decodes {stored.name[:12]}… beside it")
    raw = stack.spawn("ffmpeg-re", [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-re", "-i", str(stored),
                                    "-f", "wav", "-y", "/dev/null"])
    sampler.watch("ffmpeg", raw.pid)

    ann = wait_until(reached({"played"}), duration_ms / 1000 + 60, "the delivery to reach played")
    t_played = time.monotonic()
    sampler.mark("agent")
    wait_until(lambda: not raw.alive, duration_ms / 1000 + 60, "ffmpeg -re to finish")
    if raw.returncode != 0:
        raise RuntimeError(f"ffmpeg -re exited with {raw.returncode}:\n{raw.log_text()[-2000:]}")
    sampler.unwatch("ffmpeg")
    play = ann["deliveries"][0]["play"] or {}

    prepare = judge(window_figures(sampler.samples["agent"], t_post, t_playing, "prepare", "agent"), None)
    prepare.note = f"post → playing: render, fetch, decode; sampled every {prepare_interval:g} s"
    rows = [
        prepare,
        judge(window_figures(sampler.samples["agent"], t_playing, t_played, "playing", "agent"), None),
        window_figures(sampler.samples["ffmpeg"], 0.0, float("inf"), "playing", "ffmpeg -re (raw decode)",
                       whole_life=True),
    ]
    return PlayResult(rows, ann_id, sha, duration_ms, play.get("start_offset_ms"), len(NOTICE))


# --------------------------------------------------------------------------------------------- report


def render_table(rows: Sequence[Figures]) -> str:
    """A plain-text table: phase | process | peak RSS MB | mean CPU % | target | verdict."""
    header = ("phase", "process", "peak RSS MB", "mean CPU %", "target", "verdict")
    cells = [header] + [(r.phase, r.process, f"{r.peak_rss_mb:.1f}", f"{r.mean_cpu_pct:.2f}", r.target, r.verdict)
                        for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = {2, 3}

    def line(row: Sequence[str]) -> str:
        return " | ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                                   strict=True)))

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in cells[1:])])


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Runs both phases; returns the report as a dict."""
    stack = Stack(work)
    sampler = TreeSampler(args.interval)
    try:
        log(f"starting Mosquitto, the controller and agent {AGENT_ID!r} in {work}")
        bring_up(stack)
        assert stack.agent is not None
        sampler.start()
        rows = idle_phase(stack, sampler, args.idle_seconds, args.settle_seconds)
        played = play_phase(stack, sampler, args.interval, args.prepare_interval)
        rows += played.rows
        agent_hwm_mb = round(max(s.hwm_kb for s in sampler.samples["agent"]) / 1024, 1)
    except BaseException:
        sampler.stop()
        tails = stack.log_tails()
        stack.stop_all()
        if tails:
            log("process logs:\n" + tails)
        raise
    sampler.stop()
    stack.stop_all()
    return {
        "benchmark": "agent_footprint",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"machine": platform.machine(), "system": platform.system(), "release": platform.release(),
                 "cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {"idle_seconds": args.idle_seconds, "settle_seconds": args.settle_seconds,
                     "interval_s": args.interval, "prepare_interval_s": args.prepare_interval,
                     "clk_tck": CLK_TCK},
        "targets": {"rss_mb": TARGET_RSS_MB, "idle_cpu_pct": TARGET_IDLE_CPU_PCT},
        "announcement": {"id": played.announcement_id, "text_chars": played.text_chars, "sha256": played.sha256,
                         "duration_ms": played.duration_ms, "start_offset_ms": played.start_offset_ms},
        "agent_vmhwm_lifetime_mb": agent_hwm_mb,
        "rows": [asdict(r) for r in rows],
        "all_pass": all(r.verdict == "PASS" for r in rows if r.process == "agent"),
    }


def print_report(report: dict[str, Any]) -> None:
    """The table and the figures that do not fit in it."""
    rows = [Figures(**r) for r in report["rows"]]
    ann = report["announcement"]
    host = report["host"]
    print(render_table(rows))
    print()
    for r in rows:
        if r.max_procs > 1:
            print(f"{r.phase} {r.process}: {r.max_procs} processes at most; the main process alone peaked at "
                  f"{r.main_peak_rss_mb:.1f} MB, its children (e.g. ffmpeg decoding) make up the rest")
    offset = ann["start_offset_ms"]
    print(f"start offset of the play: {'n/a' if offset is None else f'{offset:+d} ms'} (actual − scheduled)")
    print(f"speech: {ann['text_chars']} characters → {ann['duration_ms'] / 1000:.1f} s; "
          f"agent VmHWM over its life (incl. start-up): {report['agent_vmhwm_lifetime_mb']:.1f} MB")
    print(f"RSS = VmRSS of the process and its children, sampled every {report['settings']['interval_s']:g} s "
          f"(prepare: {report['settings']['prepare_interval_s']:g} s) plus VmHWM; CPU = % of one core.")
    print(f"host: {host['machine']} {host['system']} {host['release']}, {host['cpus']} CPUs, "
          f"Python {host['python']} — not a Pi Zero 2 W; compare rows, not absolutes.")
    print(f"agent targets: {'all PASS' if report['all_pass'] else 'some FAIL'}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--idle-seconds", type=float, default=60.0, help="idle window (default 60)")
    p.add_argument("--settle-seconds", type=float, default=2.0,
                   help="wait after the agent is online before the idle window (default 2)")
    p.add_argument("--interval", type=float, default=0.5, help="sampling interval in seconds (default 0.5)")
    p.add_argument("--prepare-interval", type=float, default=0.05,
                   help="sampling interval while the agent fetches and decodes (default 0.05)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the figures to PATH as JSON")
    p.add_argument("--keep-dir", action="store_true", help="keep the temp dir (configs, logs, sink output)")
    args = p.parse_args(argv)
    if args.idle_seconds <= 0 or args.interval <= 0 or args.prepare_interval <= 0 or args.settle_seconds < 0:
        p.error("times must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark; 0 with a report (PASS or FAIL), 1 if the run itself failed."""
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="lp-footprint-"))
    try:
        report = run(args, work)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception as exc:
        log(f"benchmark failed: {type(exc).__name__}: {exc}")
        return 1
    finally:
        if args.keep_dir:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
