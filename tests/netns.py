"""Network namespaces for WS-Discovery tests: multicast never leaves the machine's main namespace.

``lan()`` makes two namespaces joined by a veth pair — one for the agent, one for the cameras — with
10.x addresses and a multicast route on the veth in each. Nothing in them can reach the real network,
and the main namespace sees none of their multicast. ``bridge_tcp()`` lets a process inside a namespace
reach a TCP service on the main namespace's 127.0.0.1 (the test's Mosquitto) through socat and nsenter.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from controller.processes import ManagedProcess
from controller.tools.local_stack import AgentFiles, loaphuong_command

SUBNET = "10.231.7"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15, check=check)


def netns_unavailable() -> str | None:
    """None when ``ip netns`` works here; otherwise why the namespace tests must skip."""
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "ip netns needs root"
    name = f"lpchk-{secrets.token_hex(3)}"
    try:
        made = _ip("netns", "add", name, check=False)
        if made.returncode != 0:
            return f"ip netns add failed: {made.stderr.strip()[:200]}"
        veth = _ip("link", "add", f"lvk{name[-6:]}", "netns", name, "type", "veth", "peer", "name",
                   f"lvj{name[-6:]}", "netns", name, check=False)
        if veth.returncode != 0:
            return f"cannot create a veth pair in a namespace: {veth.stderr.strip()[:200]}"
    finally:
        _ip("netns", "del", name, check=False)
    return None


@dataclass(frozen=True)
class Lan:
    """Two namespaces on one segment: ``agent_ns`` at ``agent_ip``, ``camera_ns`` at ``camera_ip``."""

    agent_ns: str
    camera_ns: str
    agent_ip: str
    camera_ip: str

    def prefix(self, ns: str) -> list[str]:
        """Command prefix that runs a program inside ``ns``."""
        return ["ip", "netns", "exec", ns]


@contextmanager
def lan() -> Iterator[Lan]:
    """Creates the two namespaces and their veth pair; deletes them (and the veths) afterwards."""
    tag = secrets.token_hex(3)
    net = Lan(f"lpa-{tag}", f"lpc-{tag}", f"{SUBNET}.1", f"{SUBNET}.2")
    va, vc = f"lva{tag}", f"lvc{tag}"
    try:
        _ip("netns", "add", net.agent_ns)
        _ip("netns", "add", net.camera_ns)
        # Made directly inside the namespaces: the pair never exists in the main namespace.
        _ip("link", "add", va, "netns", net.agent_ns, "type", "veth", "peer", "name", vc, "netns", net.camera_ns)
        for ns, dev, addr in ((net.agent_ns, va, net.agent_ip), (net.camera_ns, vc, net.camera_ip)):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)
        yield net
    finally:
        for ns in (net.agent_ns, net.camera_ns):
            _ip("netns", "del", ns, check=False)


def bridge_tcp(net_ns: str, port: int, log: Path) -> ManagedProcess:
    """socat inside ``net_ns`` on 127.0.0.1:``port``, each connection forwarded to the main namespace's
    127.0.0.1:``port`` (nsenter into this test process's network namespace). Stop it in teardown."""
    main_ns = f"/proc/{os.getpid()}/ns/net"
    target = f"nsenter --net={main_ns} socat STDIO TCP4\\:127.0.0.1\\:{port}"
    # coreutils timeout: the bridge ends by itself even if the test run is killed before teardown.
    return ManagedProcess(f"bridge-{port}", ["ip", "netns", "exec", net_ns, "timeout", "900", "socat",
                                             f"TCP4-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                                             f"EXEC:{target}"], log)


@dataclass
class NamespacedAgent:
    """An agent process inside a namespace, with the socat bridge that carries its MQTT connection."""

    proc: ManagedProcess
    bridge: ManagedProcess

    def log(self) -> str:
        return self.proc.log_text()

    def stop(self) -> None:
        self.proc.stop()
        self.bridge.stop()


def start_agent_in_namespace(net: Lan, files: AgentFiles, log_dir: Path, mqtt_port: int) -> NamespacedAgent:
    """Runs ``loaphuong agent`` inside ``net.agent_ns``; its broker (main namespace, 127.0.0.1:``mqtt_port``)
    is reached through :func:`bridge_tcp`. Stop it in teardown."""
    bridge = bridge_tcp(net.agent_ns, mqtt_port, log_dir / f"bridge-{files.agent_id}.log")
    try:
        proc = ManagedProcess(f"agent-{files.agent_id}", [*net.prefix(net.agent_ns), *loaphuong_command(), "agent",
                                                          "--config", str(files.config)],
                              log_dir / f"{files.agent_id}.log", env={**os.environ})
    except BaseException:
        bridge.stop()
        raise
    return NamespacedAgent(proc, bridge)


@contextmanager
def bare_namespace() -> Iterator[str]:
    """A namespace with only its loopback up and no routes at all (so multicast cannot even be sent)."""
    name = f"lpb-{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", name)
        _ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        _ip("netns", "del", name, check=False)
