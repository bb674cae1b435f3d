"""Fixtures that start the real components on 127.0.0.1 with free ports and temp dirs, and stop them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.tools.local_stack import (
    AgentFiles,
    ManagedProcess,
    free_port,
    http_json,
    register_agent,
    start_agent,
    start_controller,
    start_mosquitto,
    write_agent_config,
)
from tests.ci_skips import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401  (hooks: CI skips fail)


@dataclass
class Broker:
    """A Mosquitto process that a test may stop and start again on the same port."""

    directory: Path
    port: int
    proc: ManagedProcess | None = None

    def start(self) -> None:
        self.proc = start_mosquitto(self.directory, self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """Mosquitto on a free port, stopped in teardown."""
    b = Broker(tmp_path / "mosquitto", free_port())
    b.start()
    try:
        yield b
    finally:
        b.stop()


@dataclass
class ControllerHandle:
    """A running controller subprocess and how to call it."""

    proc: ManagedProcess
    api: str
    token: str
    data_dir: Path
    mqtt_port: int

    def get(self, path: str, token: str | None = "") -> tuple[int, Any]:
        return http_json("GET", self.api + path, self.token if token == "" else token)

    def post(self, path: str, body: Any, token: str | None = "") -> tuple[int, Any]:
        return http_json("POST", self.api + path, self.token if token == "" else token, body)

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """Polls until ``predicate`` returns something truthy."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; controller log:\n"
                             f"{self.proc.log_text()[-4000:]}")

    def device(self, agent_id: str) -> dict[str, Any]:
        status, body = self.get(f"/api/v1/devices/{agent_id}")
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    def announcement(self, ann_id: str) -> dict[str, Any]:
        status, body = self.get(f"/api/v1/announcements/{ann_id}")
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    def wait_deliveries(self, ann_id: str, statuses: set[str], timeout: float = 30) -> dict[str, Any]:
        """Waits until every delivery of an announcement is in one of ``statuses``."""
        def done() -> dict[str, Any] | None:
            ann = self.announcement(ann_id)
            if ann["status"] == "failed":
                raise AssertionError(f"announcement failed: {ann['error']}")
            ok = ann["deliveries"] and all(d["status"] in statuses for d in ann["deliveries"])
            return ann if ok else None
        result: dict[str, Any] = self.wait_for(done, timeout, f"deliveries of {ann_id} in {statuses}")
        return result


def _start_controller(tmp_path: Path, mqtt_port: int, name: str = "controller",
                      env: dict[str, str] | None = None) -> ControllerHandle:
    data_dir = tmp_path / name
    port = free_port()
    proc = start_controller(data_dir, port, mqtt_port, tmp_path / f"{name}.log", extra_env=env)
    token = (data_dir / "admin.token").read_text().strip()
    return ControllerHandle(proc, f"http://127.0.0.1:{port}", token, data_dir, mqtt_port)


@contextmanager
def running_controller(tmp_path: Path, mqtt_port: int, env: dict[str, str] | None = None) -> Iterator[ControllerHandle]:
    """A controller (data and log in ``tmp_path``) connected to the broker on ``mqtt_port``; stopped on the way
    out, also when it never connects."""
    handle = _start_controller(tmp_path, mqtt_port, env=env)
    try:
        handle.wait_for(lambda: handle.get("/healthz")[1]["mqtt"] == "connected", 15, "controller on MQTT")
        yield handle
    finally:
        handle.proc.stop()


@pytest.fixture
def controller(tmp_path: Path, broker: Broker) -> Iterator[ControllerHandle]:
    """The controller under uvicorn on a free port, connected to ``broker``."""
    with running_controller(tmp_path, broker.port) as handle:
        yield handle


@pytest.fixture
def controller_factory(tmp_path: Path) -> Iterator[Callable[..., ControllerHandle]]:
    """Starts controllers with custom settings (stopped in teardown)."""
    started: list[ControllerHandle] = []

    def make(mqtt_port: int, name: str = "controller", env: dict[str, str] | None = None) -> ControllerHandle:
        handle = _start_controller(tmp_path, mqtt_port, name, env)
        started.append(handle)
        return handle

    try:
        yield make
    finally:
        for handle in started:
            handle.proc.stop()


@dataclass
class RunningAgent:
    """An agent subprocess with its files."""

    files: AgentFiles
    proc: ManagedProcess
    registered: dict[str, Any] = field(default_factory=dict)

    @property
    def agent_id(self) -> str:
        return self.files.agent_id

    def sink_lines(self) -> list[dict[str, Any]]:
        import json

        path = self.files.sink_dir / "plays.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def log(self) -> str:
        return self.proc.log_text()


AgentFactory = Callable[..., RunningAgent]


@pytest.fixture
def agents(tmp_path: Path, controller: ControllerHandle) -> Iterator[AgentFactory]:
    """Registers and starts agents against ``controller``; all stopped in teardown."""
    started: list[RunningAgent] = []

    def make(agent_id: str, zones: tuple[str, ...] = ("khu-pho-1",), output: str = "file",
             env: dict[str, str] | None = None, wait_online: bool = True) -> RunningAgent:
        registered = register_agent(controller.api, controller.token, agent_id, zones)
        files = write_agent_config(tmp_path / "agents" / agent_id, registered, zones, output=output)
        agent = RunningAgent(files, start_agent(files, tmp_path / f"{agent_id}.log", env), registered)
        started.append(agent)
        if wait_online:
            controller.wait_for(lambda: controller.device(agent_id)["online"] or not agent.proc.alive, 20,
                                f"{agent_id} online")
            assert agent.proc.alive, agent.log()
        return agent

    try:
        yield make
    finally:
        for agent in started:
            agent.proc.stop()
