#!/usr/bin/env python3
"""Agent footprint: memory and CPU of one agent — idle, preparing, playing — next to the raw tools.

Starts Mosquitto, the controller and one agent on 127.0.0.1 in a temp dir with
:mod:`controller.tools.local_stack`, then measures the agent's process tree from ``/proc``. The agent's output:

* ``--output file`` (default): the file sink, which decodes with a child (opusdec for Opus, else
  ffmpeg) while preparing and writes the samples in real time.
* ``--output alsa``: the real board's path, with ``player = "<--player>"`` in the agent's ``[output]``:

  - ``aplay`` (default): while preparing, a decoder child (opusdec for Opus) decodes the media to a 48 kHz mono WAV with
    the volume baked in; the play spawns ``aplay -q -D default`` on that WAV, which the agent deletes
    once the play is over.
  - ``mpv``: nothing is decoded ahead; the play spawns ``mpv --ao=alsa`` on the stored Opus file.

  The agent runs with ``HOME`` set to a temp dir whose ``.asoundrc`` makes ALSA's ``default`` PCM the
  file plugin over the ``null`` device, so the sound is captured to a WAV without a sound card. The null
  slave does not pace, so aplay and mpv play *faster than real time* (about 100 s of speech in
  milliseconds for aplay, about a second for mpv): the playing window is a short burst, its memory
  figures count, its CPU figure is not a real-time rate.
* ``--both``: the file-sink run, then the ALSA run with ``--player`` (aplay unless given), each with its
  own stack (all stopped in between). ``--all``: the file-sink run, then ALSA with aplay, then with mpv.

Phases:

* **idle** — the agent connected and idle for ``--idle-seconds`` (default 60). Measured in the same
  window: ``mosquitto_sub`` subscribed to the agent's command topics (what a C MQTT client costs to sit
  idle) and ``python -c "import time; time.sleep(N)"`` (the interpreter's floor).
* **prepare** — from posting a long Vietnamese announcement until the play starts (the agent's reported
  ``actual_start``): render, fetch and, for the file sink and aplay, decode by the agent's decoder
  child; sampled every ``--prepare-interval`` s to catch that short child. Beside it in the aplay run,
  after the agent's play: the agent's decoder command on its own, decoding the stored media to the same WAV, sampled the
  same way.
* **playing** — from the play's ``actual_start`` to its ``ended_at`` as the agent reported them. Beside
  it, the bare tool on the same stored media: ``ffmpeg -re`` decoding in real time (file run, started
  when playback starts), or the player through the same kind of captured ALSA device after the agent's
  play (ALSA runs): ``aplay`` on the WAV the bare decoder wrote, or ``mpv --ao=alsa`` on the Opus file.
  The ALSA runs keep sampling every ``--prepare-interval`` s through the play; a window shorter than the
  sampling is widened to its neighbouring samples (and says so). The bare aplay lives only milliseconds
  here, so it is looked at in a tight loop until it exits (main RSS = the largest VmHWM seen, CPU from
  ``wait4``); the agent's own aplay child is as short, and the row says when the sampling missed it.

Memory, per row:

* **main RSS** — peak VmRSS of the main process alone (the agent, not its children), sampled every
  ``--interval`` s; when its VmHWM rose during a window that exact peak is used (VmHWM is also used for
  the raw tools, whose whole life is their window).
* **tree PSS** — peak PSS (``Pss:`` of ``/proc/<pid>/smaps_rollup``) summed over the process and its
  descendants (found by walking ``/proc/*/stat``); processes whose smaps_rollup cannot be read are
  skipped (and the row says so). PSS splits each shared page among the processes mapping it, so the
  agent and its decoder/aplay/mpv child no longer both count libc & co in full. It also splits pages
  shared with processes outside the tree (the controller runs the same Python here), so on a Pi where
  the agent runs alone the tree's PSS would be higher. So the report also prints (not judged) an
  estimate of the agent's tree alone from ``/proc/<pid>/smaps``: anonymous pages summed, each file
  mapping counted once at its largest Rss in the tree (``tree_alone_mb`` in the JSON).
* the old figure, VmRSS summed over the tree (it counts every shared page once per process), is kept
  in the JSON only (``tree_rss_sum_mb``).

CPU is utime+stime (plus cutime+cstime, so reaped children count) over wall time, in % of one core.

Targets (issue: Pi Zero 2 W, 512 MB), for the agent's rows: main RSS ≤ 80 MB and tree PSS ≤ 80 MB in
every phase, and idle CPU ≤ 1 % of a core. It is a report: the exit code is 0 whether the targets pass
or fail (or an ALSA run is skipped because its player is missing), nonzero only when a run broke.

    .venv/bin/python bench/agent_footprint.py [--idle-seconds 60] [--output file|alsa [--player aplay|mpv]]
    .venv/bin/python bench/agent_footprint.py --both [--player aplay|mpv] | --all   [--json out.json]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.tools.local_stack import (
    LOOPBACK,
    ManagedProcess,
    broker_security,
    free_port,
    http_json,
    register_agent,
    start_agent,
    start_controller,
    start_mosquitto,
    write_agent_config,
)
from devices.audio_output import SINK_RATE
from devices.audio_output import decode_command as agent_decode_command

AGENT_ID = "bench"
ZONES = ("khu-pho-1",)
TARGET_RSS_MB = 80.0
TARGET_IDLE_CPU_PCT = 1.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
TERMINAL_DELIVERY = frozenset({"played", "preempted", "stopped", "expired", "failed", "rejected"})
#: The agent's volume, written into its config (it is also the default) so the raw tools apply the same
#: gain: baked into the decoded WAV for aplay, ``--volume`` for mpv.
VOLUME = 80
PLAYERS = ("aplay", "mpv")
#: What each run needs beyond the stack (mosquitto, espeak-ng), and the Debian package holding it.
PACKAGES = {"aplay": "alsa-utils", "ffmpeg": "ffmpeg", "mpv": "mpv"}

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


def joined(*notes: str) -> str:
    """Notes joined with "; ", empty ones left out."""
    return "; ".join(n for n in notes if n)


# ------------------------------------------------------------------------------------------- sampling


@dataclass(frozen=True, slots=True)
class Sample:
    """One look at a process tree (zombies left out)."""

    t: float  #: time.monotonic()
    rss_kb: int  #: VmRSS summed over the tree (counts shared pages once per process)
    root_rss_kb: int  #: VmRSS of the tree's root alone
    pss_kb: int | None  #: PSS summed over the tree's processes that could be read; None if none could
    root_pss_kb: int | None  #: PSS of the root alone
    pss_missing: int  #: live processes of the tree whose PSS could not be read
    alone_kb: int | None  #: estimate of the tree alone on a machine: see :func:`_add_alone_pages`
    ticks: int  #: utime+stime+cutime+cstime summed over the tree
    hwm_kb: int  #: VmHWM of the tree's root
    procs: int  #: live processes in the tree (zombies are not counted)


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, utime+stime+cutime+cstime ticks) of one process; None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ")".
    fields = raw[raw.rindex(b")") + 2:].split()
    # fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    return int(fields[1]), sum(int(f) for f in fields[11:15])


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid → (ppid, utime+stime+cutime+cstime ticks) for every process this user can see."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:  # else it exited meanwhile
            table[int(entry)] = stat
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


def _pss_kb(pid: int) -> int | None:
    """The ``Pss:`` line of ``/proc/<pid>/smaps_rollup`` in kB; None if it cannot be read."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:  # gone, a zombie, no permission, or a kernel older than 4.14
        return None
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return None


def _add_alone_pages(pid: int, anon: list[int], files: dict[tuple[str, str, str], int]) -> bool:
    """Adds one process's resident pages from ``/proc/<pid>/smaps``; False if it cannot be read.

    Summed over a tree this estimates what the tree alone would keep resident (e.g. on a Pi, where no
    controller shares the agent's Python): anonymous pages add up, a file mapping (same device, inode
    and offset) counts once per tree at its largest Rss — shared inside the tree once, shared with
    processes outside it in full.
    """
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return False
    key: tuple[str, str, str] | None = None
    for line in text.splitlines():
        first, _, rest = line.partition(" ")
        if not first.endswith(":"):  # a mapping's header: address perms offset dev inode [path]
            fields = rest.split()
            key = None if len(fields) < 4 or fields[3] == "0" else (fields[2], fields[3], fields[1])
        elif first == "Rss:":
            kb = int(rest.split()[0])
            if key is None:
                anon.append(kb)
            else:
                files[key] = max(files.get(key, 0), kb)
    return True


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
        sample = take_sample(pid, table)
        if sample is not None:
            self.samples[name].append(sample)
        return sample


def take_sample(pid: int, table: dict[int, tuple[int, int]]) -> Sample | None:
    """One look at ``pid`` and its descendants in ``table``; None if the root is gone or a zombie."""
    if pid not in table:
        return None
    pids = _descendants(pid, table)
    rss = root_rss = hwm = pss = missing = live = 0
    pss_read = alone_ok = False
    root_pss: int | None = None
    anon: list[int] = []
    files: dict[tuple[str, str, str], int] = {}
    for p in pids:
        p_rss, p_hwm = _memory_kb(p)
        if p_rss == 0 and p_hwm == 0:
            continue  # a zombie, or gone since the table was read
        live += 1
        rss += p_rss
        p_pss = _pss_kb(p)
        if p_pss is not None:
            pss += p_pss
            pss_read = True
        elif Path(f"/proc/{p}").exists():
            missing += 1  # alive but unreadable: counted, so the report can say so
        alone_ok = _add_alone_pages(p, anon, files) or alone_ok
        if p == pid:
            root_rss, hwm, root_pss = p_rss, p_hwm, p_pss
    if hwm == 0:  # a zombie root: nothing to measure any more
        return None
    alone = sum(anon) + sum(files.values()) if alone_ok else None
    return Sample(time.monotonic(), rss, root_rss, pss if pss_read else None, root_pss, missing, alone,
                  sum(table[p][1] for p in pids if p in table), hwm, live)


def _mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


@dataclass
class Figures:
    """One row of the report."""

    phase: str
    process: str
    main_rss_mb: float  #: peak VmRSS (or VmHWM) of the root process alone, without children
    tree_pss_mb: float | None  #: peak PSS summed over the tree; None if no PSS could be read
    mean_cpu_pct: float
    main_pss_mb: float | None  #: peak PSS of the root process alone
    tree_rss_sum_mb: float  #: peak VmRSS summed over the tree: shared pages counted once per process
    tree_alone_mb: float | None  #: peak estimate of the tree alone on a machine (see _add_alone_pages)
    seconds: float
    samples: int
    max_procs: int
    target: str = "—"
    verdict: str = "baseline"
    note: str = ""


def window_figures(samples: Sequence[Sample], t0: float, t1: float, phase: str, process: str,
                   whole_life: bool = False) -> Figures:
    """Peak memory and mean CPU of the samples taken in [t0, t1].

    ``whole_life``: the process lived only for this window, so its VmHWM is its exact peak. Otherwise
    VmHWM counts only if it rose inside the window (it would otherwise carry start-up's peak). A window
    holding fewer than two samples (a play faster than the sampling) is widened to the samples next to it.
    """
    inside = [s for s in samples if t0 <= s.t <= t1]
    note = ""
    if len(inside) < 2:
        before = [s for s in samples if s.t < t0][-1:]
        after = [s for s in samples if s.t > t1][:1]
        inside = before + inside + after
        note = f"{t1 - t0:.2f} s window widened to the neighbouring samples"
    if len(inside) < 2:
        raise RuntimeError(f"{process}: only {len(inside)} sample(s) in or around the {phase} window")
    first, last = inside[0], inside[-1]
    main_kb = max(s.root_rss_kb for s in inside)
    sum_kb = max(s.rss_kb for s in inside)
    if whole_life or last.hwm_kb > first.hwm_kb:
        main_kb = max(main_kb, last.hwm_kb)
        sum_kb = max(sum_kb, last.hwm_kb)
    pss = [s.pss_kb for s in inside if s.pss_kb is not None]
    root_pss = [s.root_pss_kb for s in inside if s.root_pss_kb is not None]
    alone = [s.alone_kb for s in inside if s.alone_kb is not None]
    if any(s.pss_missing for s in inside):
        note = joined(note, "PSS unreadable for some processes: tree PSS counts only the others")
    seconds = last.t - first.t
    cpu = (last.ticks - first.ticks) / CLK_TCK / seconds * 100 if seconds > 0 else 0.0
    return Figures(phase, process, round(main_kb / 1024, 1), _mb(max(pss)) if pss else None, round(cpu, 2),
                   _mb(max(root_pss)) if root_pss else None, round(sum_kb / 1024, 1),
                   _mb(max(alone)) if alone else None, round(seconds, 2),
                   len(inside), max(s.procs for s in inside), note=note)


def run_closely(cmd: Sequence[str], log_path: Path, env: dict[str, str], phase: str, process: str,
                timeout: float) -> Figures:
    """Runs a short single process (no children) to its end, looking at it in a tight loop.

    For a tool living a few milliseconds, far shorter than the sampler's interval: main RSS is the
    largest VmHWM the loop saw (read until the process exits, so it misses at most its last instants),
    PSS and the alone estimate the largest it saw, CPU its ``ru_utime + ru_stime`` from ``wait4``.
    (``ru_maxrss`` would not do: Linux carries the forking parent's peak across exec into it.)
    """
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                env={**os.environ, **env}, start_new_session=True)
    t0 = time.monotonic()
    samples: list[Sample] = []
    try:
        # WNOWAIT leaves the exit to reap: wait4 below then reports the process's whole-life rusage.
        while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"{process} still running after {timeout:g} s")
            stat = _stat(proc.pid)
            sample = None if stat is None else take_sample(proc.pid, {proc.pid: stat})
            if sample is not None:
                samples.append(sample)
        seconds = time.monotonic() - t0
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait(5)
    if proc.returncode != 0:
        raise RuntimeError(f"{process} exited with {proc.returncode}:\n"
                           f"{log_path.read_text(errors='replace')[-2000:]}")
    if not samples:
        raise RuntimeError(f"{process} ended before it could be looked at")
    main_kb = max(s.hwm_kb for s in samples)
    pss = [s.pss_kb for s in samples if s.pss_kb is not None]
    alone = [s.alone_kb for s in samples if s.alone_kb is not None]
    cpu = (usage.ru_utime + usage.ru_stime) / seconds * 100 if seconds > 0 else 0.0
    note = (f"lived {seconds * 1000:.0f} ms: looked at {len(samples)} times in a tight loop "
            f"(peak VmHWM seen; CPU from wait4)")
    if not pss:
        note = joined(note, "no PSS read before it ended")
    return Figures(phase, process, round(main_kb / 1024, 1), _mb(max(pss)) if pss else None, round(cpu, 2),
                   _mb(max(s.root_pss_kb for s in samples if s.root_pss_kb is not None)) if pss else None,
                   round(main_kb / 1024, 1), _mb(max(alone)) if alone else None, round(seconds, 3),
                   len(samples), 1, note=note)


def judge(row: Figures, cpu_target: float | None) -> Figures:
    """Fills an agent row's target and PASS/FAIL: main RSS and tree PSS within target (and CPU if given)."""
    ok = row.main_rss_mb <= TARGET_RSS_MB
    row.target = f"RSS & PSS ≤ {TARGET_RSS_MB:g} MB"
    if row.tree_pss_mb is None:
        row.note = joined(row.note, "no PSS readable: judged on main RSS alone")
    else:
        ok = ok and row.tree_pss_mb <= TARGET_RSS_MB
    if cpu_target is not None:
        ok = ok and row.mean_cpu_pct <= cpu_target
        row.target += f", CPU ≤ {cpu_target:g} %"
    row.verdict = "PASS" if ok else "FAIL"
    return row


# ---------------------------------------------------------------------------------------- the stack


def write_asoundrc(home: Path) -> Path:
    """``home/.asoundrc`` making ALSA's default PCM a WAV writer over the null device; returns the WAV path."""
    home.mkdir(parents=True, exist_ok=True)
    capture = home / "captured.wav"
    (home / ".asoundrc").write_text(
        f'pcm.!default {{ type file; slave.pcm "null"; file "{capture}"; format "wav" }}\n', encoding="utf-8")
    return capture


def mpv_command(mpv: str, media: Path) -> list[str]:
    """What :class:`devices.audio_output.AlsaOutput` runs for a play with ``player = "mpv"``."""
    return [mpv, "--no-config", "--no-video", "--no-terminal", "--really-quiet", "--ao=alsa",
            "--audio-device=alsa/default", f"--volume={VOLUME}", "--", str(media)]


def aplay_command(aplay: str, wav: Path) -> list[str]:
    """What :class:`devices.audio_output.AlsaOutput` runs for a play with ``player = "aplay"``."""
    return [aplay, "-q", "-D", "default", "--", str(wav)]


def needed_tools(output: str, player: str | None) -> list[str]:
    """The binaries a run needs beyond the stack's."""
    if output == "file":
        return ["ffmpeg"]
    return ["aplay", "ffmpeg"] if player == "aplay" else ["mpv"]


def missing_tools(output: str, player: str | None) -> str | None:
    """Why a run cannot go ahead (a tool is not installed), or None."""
    missing = [tool for tool in needed_tools(output, player) if shutil.which(tool) is None]
    if not missing:
        return None
    packages = " ".join(dict.fromkeys(PACKAGES[tool] for tool in missing))
    who = "the file sink" if output == "file" else f'the ALSA output with player = "{player}"'
    return (f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed "
            f"(apt-get install {packages}); {who} needs {' and '.join(needed_tools(output, player))}")


def set_output_player(config: Path, player: str) -> None:
    """Sets ``player = "<player>"`` in the ``[output]`` section of an agent's TOML (replacing one there)."""
    lines = config.read_text(encoding="utf-8").splitlines()
    try:
        start = lines.index("[output]")
    except ValueError:
        raise RuntimeError(f"no [output] section in {config}") from None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    kept = [line for line in lines[start + 1:end] if line.partition("=")[0].strip() != "player"]
    while kept and not kept[-1].strip():  # the new line goes right under the section's last key
        kept.pop()
    lines[start + 1:end] = [*kept, f'player = "{player}"', *([""] if end < len(lines) else [])]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def wav_seconds(path: Path) -> float | None:
    """Length of a WAV file in seconds; None if it is missing or unreadable."""
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / w.getframerate()
    except (OSError, EOFError, wave.Error):
        return None


@dataclass
class Stack:
    """The running processes and where to reach them."""

    work: Path
    output: str = "file"
    player: str | None = None  #: the ALSA output's player ("aplay" or "mpv"); None for the file sink
    procs: list[ManagedProcess] = field(default_factory=list)
    api: str = ""
    token: str = ""
    data_dir: Path = Path()
    mqtt_port: int = 0
    agent: ManagedProcess | None = None
    agent_data: Path = Path()  #: the agent's data dir (its decoded WAVs are in ``decoded/``)
    capture: Path | None = None  #: the ALSA run's captured WAV

    def get(self, path: str) -> Any:
        """GET an API path; raises on anything but 200."""
        status, body = http_json("GET", self.api + path, self.token)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body}")
        return body

    def spawn(self, name: str, cmd: Sequence[str], env: dict[str, str] | None = None) -> ManagedProcess:
        """Starts a raw-tool process, remembered so it is always stopped."""
        proc = ManagedProcess(name, cmd, self.work / f"{name}.log", env=None if env is None else {**os.environ, **env})
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
    """Mosquitto, controller, one registered agent with the stack's output, online."""
    stack.mqtt_port = free_port()
    stack.procs.append(start_mosquitto(stack.work / "mosquitto", stack.mqtt_port))
    http_port = free_port()
    stack.data_dir = stack.work / "controller"
    stack.procs.append(start_controller(stack.data_dir, http_port, stack.mqtt_port, stack.work / "controller.log"))
    stack.api = f"http://{LOOPBACK}:{http_port}"
    stack.token = (stack.data_dir / "admin.token").read_text(encoding="utf-8").strip()
    wait_until(lambda: stack.get("/healthz").get("mqtt") == "connected", 20, "the controller on MQTT")
    registered = register_agent(stack.api, stack.token, AGENT_ID, ZONES, name="footprint benchmark")
    files = write_agent_config(stack.work / "agent", registered, ZONES, output=stack.output,
                               extra=f"volume = {VOLUME}\n")
    stack.agent_data = files.data_dir
    env = None
    if stack.output == "alsa":
        assert stack.player is not None
        set_output_player(files.config, stack.player)
        # alsa-lib reads ~/.asoundrc, so the agent's player writes to the capture file: no sound card needed.
        home = stack.work / "alsa-home"
        stack.capture = write_asoundrc(home)
        env = {"HOME": str(home)}
    stack.agent = start_agent(files, stack.work / "agent.log", env=env)
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
    # A tool account of its own (anonymous access is off): the broker binds a client id to its account, so
    # logging in as the agent would disconnect the agent.
    sec = broker_security(stack.mqtt_port)
    login = ["-u", sec.tools[0][0], "-P", sec.tools[0][1]] if sec is not None and sec.tools else []
    sub = stack.spawn("mosquitto_sub", [mosquitto_sub, "-h", LOOPBACK, "-p", str(stack.mqtt_port), *login,
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
    play_s: float  #: the play's actual_start → ended_at as the agent reported them
    captured_s: float | None = None  #: ALSA runs: seconds of audio the agent's player wrote to the capture file
    raw_captured_s: float | None = None  #: ALSA runs: the same for the bare player
    same_capture: bool | None = None  #: ALSA runs: the two captures hold the same bytes (same samples, same gain)
    decoded_wav_mb: float | None = None  #: aplay run: size of the WAV the bare decoder wrote
    decoded_left: list[str] | None = None  #: file & aplay runs: files left in the agent's decoded/ after the play


def monotonic_of(iso: str | None, fallback: float) -> float:
    """A wall-clock ISO time from the API as a time.monotonic() value (``fallback`` if absent)."""
    if not iso:
        return fallback
    wall = datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    return wall + (time.monotonic() - time.time())


def finish(sampler: TreeSampler, proc: ManagedProcess, timeout: float) -> list[Sample]:
    """Waits for a raw tool watched as ``proc.name`` to end; its samples (raises if it failed)."""
    wait_until(lambda: not proc.alive, timeout, f"{proc.name} to finish", poll=0.02)
    sampler.unwatch(proc.name)
    if proc.returncode != 0:
        raise RuntimeError(f"{proc.name} exited with {proc.returncode}:\n{proc.log_text()[-2000:]}")
    return sampler.samples[proc.name]


def decoded_left(stack: Stack, timeout: float = 5.0) -> list[str]:
    """What is still in the agent's ``decoded/`` once it had ``timeout`` s to release it after the play."""
    decoded = stack.agent_data / "decoded"

    def left() -> list[str]:
        return sorted(p.name for p in decoded.iterdir()) if decoded.is_dir() else []

    deadline = time.monotonic() + timeout
    while (names := left()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return names


def play_phase(stack: Stack, sampler: TreeSampler, interval: float, prepare_interval: float) -> PlayResult:
    """Posts the notice; measures prepare (post → start of play) and playing (start → end); the raw tools."""
    assert stack.agent is not None
    alsa = stack.output == "alsa"
    player = stack.player if alsa else None
    tools: dict[str, str] = {}
    for name in needed_tools(stack.output, player):
        path = shutil.which(name)
        if path is None:
            raise FileNotFoundError(f"{name} is not installed")
        tools[name] = path
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

    # On ALSA the play may be over before this sees "playing": the null device does not pace the player.
    ann = wait_until(reached({"playing", "played"}), 180, "the delivery to reach playing", poll=0.1)
    t_seen_playing = time.monotonic()
    sampler.mark("agent")
    if not alsa:
        sampler.interval = interval  # an ALSA play lasts a second at most: keep sampling fast through it
    media = ann["media"]
    sha, duration_ms = media["sha256"], int(media["duration_ms"])
    stored = stack.data_dir / "media" / sha[:2] / sha
    if not stored.is_file():
        raise FileNotFoundError(f"stored media not found at {stored}")
    ffmpeg_re: ManagedProcess | None = None
    if not alsa:
        log(f"playing: {duration_ms / 1000:.1f} s of speech; ffmpeg -re decodes {stored.name[:12]}… beside it")
        ffmpeg_re = stack.spawn("ffmpeg-re", [tools["ffmpeg"], "-nostdin", "-hide_banner", "-nostats", "-re",
                                              "-i", str(stored), "-f", "wav", "-y", "/dev/null"])
        sampler.watch(ffmpeg_re.name, ffmpeg_re.pid)

    ann = wait_until(reached({"played"}), duration_ms / 1000 + 60, "the delivery to reach played", poll=0.1)
    t_seen_played = time.monotonic()
    sampler.mark("agent")
    play = ann["deliveries"][0]["play"] or {}
    t_start = monotonic_of(play.get("actual_start"), t_seen_playing)
    t_end = monotonic_of(play.get("ended_at"), t_seen_played)
    result = PlayResult([], ann_id, sha, duration_ms, play.get("start_offset_ms"), len(NOTICE),
                        round(t_end - t_start, 2))
    agent_samples = sampler.samples["agent"]
    prepare = judge(window_figures(agent_samples, t_post, t_start, "prepare", "agent"), None)
    playing = judge(window_figures(agent_samples, t_start, t_end, "playing", "agent"), None)
    what = {None: "render, fetch, decode (decoder child)",
            "aplay": "render, fetch, decode to WAV with the gain (decoder child)",
            "mpv": "render, fetch (mpv decodes as it plays)"}[player]
    prepare.note = joined(prepare.note, f"post → start of play: {what}; sampled every {prepare_interval:g} s")
    raw_prepare: list[Figures] = []
    raw_playing: Figures
    if player is None:
        assert ffmpeg_re is not None
        raw_playing = window_figures(finish(sampler, ffmpeg_re, duration_ms / 1000 + 60), 0.0, float("inf"),
                                     "playing", "ffmpeg -re (raw decode)", whole_life=True)
    else:
        playing.note = joined(playing.note, f"{player} on the unpaced null device: a burst, "
                                            f"its CPU is not a real-time rate")
        if player == "aplay" and playing.max_procs < 2:
            playing.note = joined(playing.note, "the sampling missed the agent's aplay child (it lives "
                                                "milliseconds here): tree figures are the agent alone — "
                                                "see the raw aplay row")
        assert stack.capture is not None
        result.captured_s = wav_seconds(stack.capture)
        raw_home = stack.work / "alsa-home-raw"
        raw_capture = write_asoundrc(raw_home)
        if player == "aplay":
            log(f"played: {duration_ms / 1000:.1f} s of speech through aplay in {t_end - t_start:.2f} s; "
                f"now the agent's decoder on its own, then the bare aplay")
            wav = stack.work / "raw-decoded.wav"
            # Exactly the agent's decoder (opusdec for Ogg Opus when installed, else ffmpeg).
            decode_cmd = agent_decode_command(stored, wav, VOLUME)
            decoder = stack.spawn("decode-wav", decode_cmd)
            sampler.watch(decoder.name, decoder.pid)
            decode = window_figures(finish(sampler, decoder, 300), 0.0, float("inf"), "prepare",
                                    f"{decode_cmd[0]} → WAV (raw decode)", whole_life=True)
            result.decoded_wav_mb = round(wav.stat().st_size / 2**20, 1)
            decode.note = joined(decode.note, f"stored media → {SINK_RATE // 1000} kHz mono WAV at volume "
                                              f"{VOLUME} %, as the agent prepares; sampled every "
                                              f"{prepare_interval:g} s")
            raw_prepare.append(decode)
            raw_playing = run_closely(aplay_command(tools["aplay"], wav), stack.work / "aplay-raw.log",
                                      {"HOME": str(raw_home)}, "playing", "aplay (raw player)",
                                      duration_ms / 1000 + 60)
            raw_playing.note = joined("that WAV on its own captured ALSA device: a burst, CPU not a real-time rate",
                                      raw_playing.note)
            wav.unlink()
        else:
            log(f"played: {duration_ms / 1000:.1f} s of speech through mpv in {t_end - t_start:.2f} s; "
                f"now the bare mpv on the same media")
            mpv = stack.spawn("mpv-raw", mpv_command(tools["mpv"], stored), env={"HOME": str(raw_home)})
            sampler.watch(mpv.name, mpv.pid)
            raw_playing = window_figures(finish(sampler, mpv, duration_ms / 1000 + 60), 0.0, float("inf"),
                                         "playing", "mpv --ao=alsa (raw player)", whole_life=True)
            raw_playing.note = joined(raw_playing.note, "the Opus file on its own captured ALSA device: a burst, "
                                                        "CPU not a real-time rate")
        result.raw_captured_s = wav_seconds(raw_capture)
        if raw_capture.is_file() and stack.capture.is_file():
            result.same_capture = filecmp.cmp(stack.capture, raw_capture, shallow=False)
    if player != "mpv":
        result.decoded_left = decoded_left(stack)
    result.rows = [prepare, *raw_prepare, playing, raw_playing]
    return result


# --------------------------------------------------------------------------------------------- report


def render_table(rows: Sequence[Figures]) -> str:
    """A plain-text table: phase | process | main RSS MB | tree PSS MB | CPU % | procs | verdict."""
    header = ("phase", "process", "main RSS MB", "tree PSS MB", "CPU %", "procs", "verdict")
    cells = [header] + [(r.phase, r.process, f"{r.main_rss_mb:.1f}",
                         "n/a" if r.tree_pss_mb is None else f"{r.tree_pss_mb:.1f}", f"{r.mean_cpu_pct:.2f}",
                         str(r.max_procs), r.verdict) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = {2, 3, 4, 5}

    def line(row: Sequence[str]) -> str:
        return " | ".join(c.rjust(w) if i in numeric else c.ljust(w)
                          for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in cells[1:])])


OUTPUT_TITLES = {
    "file": "output: file sink (a decoder child, opusdec for Opus, decodes while preparing; "
            "samples written in real time)",
    "alsa-aplay": 'output: ALSA, player = "aplay" — decoder child (opusdec for Opus) decodes to WAV while preparing, '
                  'aplay -D default '
                  "per play; default PCM = file plugin over the null device (no sound card)",
    "alsa-mpv": 'output: ALSA, player = "mpv" — mpv --ao=alsa per play, decoding as it plays; default PCM = file '
                "plugin over the null device (no sound card)",
}


def run_label(output: str, player: str | None) -> str:
    """``file``, ``alsa-aplay`` or ``alsa-mpv``."""
    return output if player is None else f"{output}-{player}"


def run(args: argparse.Namespace, work: Path, output: str, player: str | None) -> dict[str, Any]:
    """One stack, both phases, everything stopped at the end; returns the report as a dict."""
    stack = Stack(work, output, player)
    sampler = TreeSampler(args.interval)
    label = run_label(output, player)
    load = os.getloadavg()
    try:
        log(f"[{label}] starting Mosquitto, the controller and agent {AGENT_ID!r} in {work}")
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
    report: dict[str, Any] = {
        "benchmark": "agent_footprint",
        "output": output,
        "player": player,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"machine": platform.machine(), "system": platform.system(), "release": platform.release(),
                 "cpus": os.cpu_count(), "python": platform.python_version(),
                 "loadavg_start": [round(x, 2) for x in load],
                 "loadavg_end": [round(x, 2) for x in os.getloadavg()]},
        "settings": {"idle_seconds": args.idle_seconds, "settle_seconds": args.settle_seconds,
                     "interval_s": args.interval, "prepare_interval_s": args.prepare_interval,
                     "playing_interval_s": args.prepare_interval if output == "alsa" else args.interval,
                     "clk_tck": CLK_TCK, "volume": VOLUME},
        "targets": {"main_rss_mb": TARGET_RSS_MB, "tree_pss_mb": TARGET_RSS_MB, "idle_cpu_pct": TARGET_IDLE_CPU_PCT},
        "announcement": {"id": played.announcement_id, "text_chars": played.text_chars, "sha256": played.sha256,
                         "duration_ms": played.duration_ms, "start_offset_ms": played.start_offset_ms,
                         "play_s": played.play_s},
        "agent_vmhwm_lifetime_mb": agent_hwm_mb,
        "rows": [asdict(r) for r in rows],
        "all_pass": all(r.verdict == "PASS" for r in rows if r.process == "agent"),
    }
    if output == "alsa":
        report["alsa"] = {"captured_s": played.captured_s, "raw_captured_s": played.raw_captured_s,
                          "same_capture": played.same_capture}
    if played.decoded_wav_mb is not None:
        report["decoded_wav_mb"] = played.decoded_wav_mb
    if played.decoded_left is not None:
        report["decoded_left_after_play"] = played.decoded_left
    return report


def print_report(report: dict[str, Any]) -> None:
    """The table and the figures that do not fit in it."""
    print(f"== {OUTPUT_TITLES[run_label(report['output'], report.get('player'))]}")
    if "skipped" in report:
        print(f"skipped: {report['skipped']}")
        return
    rows = [Figures(**r) for r in report["rows"]]
    ann = report["announcement"]
    host = report["host"]
    settings = report["settings"]
    print(render_table(rows))
    print(f"agent rows PASS if main RSS ≤ {TARGET_RSS_MB:g} MB and tree PSS ≤ {TARGET_RSS_MB:g} MB "
          f"(idle: and CPU ≤ {TARGET_IDLE_CPU_PCT:g} % of a core); the other rows are baselines. "
          f"Agent targets: {'all PASS' if report['all_pass'] else 'some FAIL'}.")
    for r in rows:
        if r.note:
            print(f"- {r.phase} / {r.process}: {r.note}")
    alone = [(r.phase, r.tree_alone_mb) for r in rows if r.process == "agent" and r.tree_alone_mb is not None]
    if alone:
        print("agent tree alone, est. (pages shared inside the tree once, pages shared with other processes — the "
              "controller's Python here — in full, as on a Pi running only the agent): "
              + ", ".join(f"{phase} {mb:.1f} MB{' (over target)' if mb > TARGET_RSS_MB else ''}"
                          for phase, mb in alone))
    offset = ann["start_offset_ms"]
    print(f"speech: {ann['text_chars']} characters → {ann['duration_ms'] / 1000:.1f} s, played in "
          f"{ann['play_s']:.2f} s; start offset {'n/a' if offset is None else f'{offset:+d} ms'} (actual − scheduled); "
          f"agent VmHWM over its life (incl. start-up): {report['agent_vmhwm_lifetime_mb']:.1f} MB")
    if report["output"] == "alsa":
        alsa, player = report["alsa"], report["player"]

        def seconds(value: float | None) -> str:
            return "nothing" if value is None else f"{value:.1f} s"

        same = {True: " (byte-identical)", False: " (different bytes)", None: ""}[alsa.get("same_capture")]
        print(f"ALSA capture: the agent's {player} wrote {seconds(alsa['captured_s'])} of audio in "
              f"{ann['play_s']:.2f} s, the bare {player} {seconds(alsa['raw_captured_s'])}{same} — the null slave does "
              f"not pace, so {player} runs faster than real time (memory figures count, CPU figures do not); "
              f"on a Pi's DAC the play lasts the full {ann['duration_ms'] / 1000:.0f} s.")
    if "decoded_left_after_play" in report:
        left = report["decoded_left_after_play"]
        size = f"{report['decoded_wav_mb']:.1f} MB, " if "decoded_wav_mb" in report else ""
        print(f"decoded WAV ({size}{SINK_RATE // 1000} kHz mono 16-bit) in the agent's data/decoded/ after the "
              f"play: {'deleted' if not left else 'still there: ' + ', '.join(left)}")
    print(f"main RSS = VmRSS of the process alone (VmHWM when it rose in the window); tree PSS = PSS summed over "
          f"it and its children (shared pages split, also with the controller on this host). Sampled every "
          f"{settings['interval_s']:g} s (prepare: {settings['prepare_interval_s']:g} s, playing: "
          f"{settings['playing_interval_s']:g} s); CPU = % of one core incl. reaped children; "
          f"summed tree RSS in --json.")
    load = host.get("loadavg_start")
    print(f"host: {host['machine']} {host['system']} {host['release']}, {host['cpus']} CPUs, "
          f"Python {host['python']}{'' if load is None else f', load avg at start {load[0]:.2f}'}"
          f" — not a Pi Zero 2 W; compare rows, not absolutes.")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--idle-seconds", type=float, default=60.0, help="idle window (default 60)")
    p.add_argument("--settle-seconds", type=float, default=2.0,
                   help="wait after the agent is online before the idle window (default 2)")
    p.add_argument("--interval", type=float, default=0.5, help="sampling interval in seconds (default 0.5)")
    p.add_argument("--prepare-interval", type=float, default=0.05,
                   help="sampling interval while the agent fetches and decodes, and through an ALSA play "
                        "(default 0.05)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--output", choices=("file", "alsa"), default=None,
                       help="the agent's output: the file sink (default) or ALSA, captured to a WAV")
    which.add_argument("--both", action="store_true", help="the file-sink run, then the ALSA run with --player")
    which.add_argument("--all", action="store_true",
                       help="the file-sink run, then ALSA with aplay, then ALSA with mpv")
    p.add_argument("--player", choices=PLAYERS, default=None,
                   help='the ALSA output\'s player, written as player = "..." in the agent\'s [output] '
                        "(default aplay)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the figures to PATH as JSON")
    p.add_argument("--keep-dir", action="store_true", help="keep the temp dirs (configs, logs, sink output)")
    args = p.parse_args(argv)
    if args.idle_seconds <= 0 or args.interval <= 0 or args.prepare_interval <= 0 or args.settle_seconds < 0:
        p.error("times must be positive")
    if args.player is not None and (args.all or not (args.both or args.output == "alsa")):
        p.error("--player applies to one ALSA run: use it with --output alsa or --both (--all runs both players)")
    return args


def planned_runs(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """(output, player) of each run, in order; player None for the file sink."""
    player = args.player or "aplay"
    if args.all:
        return [("file", None), ("alsa", "aplay"), ("alsa", "mpv")]
    if args.both:
        return [("file", None), ("alsa", player)]
    return [("alsa", player)] if args.output == "alsa" else [("file", None)]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark; 0 with a report (PASS or FAIL, or ALSA skipped), 1 if a run itself failed."""
    args = parse_args(argv)
    reports: list[dict[str, Any]] = []
    broke = False
    for output, player in planned_runs(args):
        label = run_label(output, player)
        reason = missing_tools(output, player) if output == "alsa" else None
        if reason is not None:
            log(f"[{label}] skipped: {reason}")
            report: dict[str, Any] = {"benchmark": "agent_footprint", "output": output, "player": player,
                                      "skipped": reason}
        else:
            work = Path(tempfile.mkdtemp(prefix=f"lp-footprint-{label}-"))
            try:
                report = run(args, work, output, player)
            except KeyboardInterrupt:
                log("interrupted")
                return 130
            except Exception as exc:
                log(f"[{label}] benchmark failed: {type(exc).__name__}: {exc}")
                broke = True
                continue
            finally:
                if args.keep_dir:
                    log(f"kept {work}")
                else:
                    shutil.rmtree(work, ignore_errors=True)
        if reports:
            print()
        print_report(report)
        sys.stdout.flush()
        reports.append(report)
    if args.json and reports:
        data = reports[0] if len(reports) == 1 else {"benchmark": "agent_footprint", "runs": reports}
        args.json.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        log(f"wrote {args.json}")
    return 1 if broke else 0


if __name__ == "__main__":
    sys.exit(main())
