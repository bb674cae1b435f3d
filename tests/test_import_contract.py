"""The import contract between the rooms (DESIGN.md §2), checked on the source and on a running agent.

* ``schedules/``, ``audio/`` and ``devices/`` import neither ``controller`` nor ``edge_agent``;
* ``edge_agent`` does not import ``controller``;
* nothing but the console script's dispatcher imports ``controller.tools`` (demo, local stack, installer);
* ``edge_agent`` does not import a controller-only dependency, directly or through the ``devices``,
  ``schedules`` or ``audio`` modules it imports (a Pi installs ``loaphuong[agent]`` only, and a Pi Zero has
  512 MB). "Controller-only" is read from ``pyproject.toml``: the ``controller`` extra, and what those
  distributions pull in, minus everything the base install and the agent's extras pull in.

Plain Python rather than ``import-linter``: the rules need the controller extra's distributions turned into
import names (and followed through their own requirements), which import-linter cannot derive — its
forbidden contracts take a hand-written module list that would drift from ``pyproject.toml``. The AST walk
sees every import statement, lazy ones inside functions and ``TYPE_CHECKING`` blocks included, and the
subprocess check confirms on the real interpreter what the walk concluded — and that the walk missed no
first-party module the agent actually loads.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import json
import subprocess
import sys
import tomllib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = ("controller", "edge_agent", "devices", "schedules", "audio", "firmware_configs", "loaphuong")
SHARED = ("schedules", "audio", "devices")
#: The console script's dispatcher: its subcommands import their side lazily, so the walk does not follow it.
DISPATCHER = ("loaphuong", "loaphuong.cli")

#: Distributions whose import name is not their name lower-cased with "-" as "_" (used for a declared
#: distribution that is not installed here; an installed one reports its own top-level names).
IMPORT_NAMES = {
    "argon2-cffi": ("argon2",),
    "onvif-zeep-async": ("onvif",),
    "opencv-python-headless": ("cv2",),
    "piper-tts": ("piper",),
    "python-multipart": ("multipart", "python_multipart"),
}


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to an absolute dotted name."""

    importer: str
    target: str
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    """Every first-party module, by dotted name."""
    found: dict[str, Path] = {}
    for package in FIRST_PARTY:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _imports_of(name: str, path: Path) -> list[Import]:
    """The absolute targets of every import statement in the module, wherever it sits in the file."""
    is_package = path.name == "__init__.py"
    out: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [Import(name, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            out.append(Import(name, base, node.lineno))
            # "from pkg import sub" imports the submodule pkg.sub when there is one.
            out += [Import(name, f"{base}.{alias.name}", node.lineno) for alias in node.names
                    if f"{base}.{alias.name}" in _modules()]
    return out


@cache
def _graph() -> dict[str, list[Import]]:
    return {name: _imports_of(name, path) for name, path in _modules().items()}


def _with_parents(dotted: str) -> Iterator[str]:
    """``a.b.c`` loads ``a``, ``a.b`` and ``a.b.c``: each package's ``__init__`` runs first."""
    parts = dotted.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])


def _reachable(start: Iterable[str]) -> dict[str, str | None]:
    """First-party modules loaded by importing ``start``, each with the module that first imported it."""
    parent: dict[str, str | None] = {}
    todo: deque[str] = deque()
    for name in start:
        for module in _with_parents(name):
            if module in _modules() and module not in parent:
                parent[module] = None
                todo.append(module)
    while todo:
        current = todo.popleft()
        for imp in _graph()[current]:
            for module in _with_parents(imp.target):
                if module in _modules() and module not in parent:
                    parent[module] = current
                    todo.append(module)
    return parent


def _chain(parent: dict[str, str | None], module: str) -> str:
    path = [module]
    while (up := parent[path[-1]]) is not None:
        path.append(up)
    return " ← ".join(path)


def _in_package(module: str, packages: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


# --------------------------------------------------------------------------------------------------
# Controller-only dependencies, from pyproject.toml


def _distribution_closure(requirements: Iterable[str]) -> set[str]:
    """The canonical names of these distributions and, where installed, everything they require."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for raw in requires:
            sub = Requirement(raw)
            # Only what this install pulls in: the extras asked for, and the markers of this platform.
            if sub.marker is None or any(sub.marker.evaluate({"extra": extra}) for extra in req.extras | {""}):
                todo.append(sub)
    return seen


@cache
def _installed_import_names() -> dict[str, set[str]]:
    """Canonical distribution name → the top-level import names it installs."""
    names: dict[str, set[str]] = {}
    for top, dists in metadata.packages_distributions().items():
        for dist in dists:
            names.setdefault(canonicalize_name(dist), set()).add(top)
    return names


def _import_names(dist: str) -> set[str]:
    installed = _installed_import_names().get(dist)
    if installed:
        return installed
    return set(IMPORT_NAMES.get(dist, (dist.replace("-", "_"),)))


@cache
def controller_only() -> dict[str, str]:
    """Top-level import name → the controller-only distribution that installs it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    controller = _distribution_closure(extras["controller"])
    agent = _distribution_closure([*project["dependencies"], *(r for key, reqs in extras.items()
                                                              if key not in ("controller", "test") for r in reqs)])
    return {name: dist for dist in sorted(controller - agent) for name in _import_names(dist)}


# --------------------------------------------------------------------------------------------------
# The rules on the source


def test_the_walk_sees_the_packages_and_the_declared_dependencies() -> None:
    """Guards the guards: an empty module list or dependency map would make every rule below pass."""
    assert {"edge_agent.agent", "devices", "audio.engines", "schedules", "controller.app"} <= set(_modules())
    names = controller_only()
    for declared in ("fastapi", "sqlalchemy", "alembic", "apscheduler", "cv2", "onvif", "argon2", "pyttsx3",
                     "piper", "gtts", "jinja2", "babel", "segno", "uvicorn", "numpy", "multipart", "websockets",
                     "pydantic_settings"):
        assert declared in names, f"{declared} is not derived as controller-only from pyproject.toml"
    # What both sides need is never controller-only, even where a controller dependency also requires it.
    assert not {"pydantic", "paho", "cryptography", "PIL", "yaml", "dateutil", "serial"} & set(names)
    # The name map must cover every import name an installed controller-only distribution really has.
    for dist in set(names.values()):
        installed = _installed_import_names().get(dist)
        if installed and dist in IMPORT_NAMES:
            assert installed <= set(IMPORT_NAMES[dist]), f"IMPORT_NAMES[{dist!r}] misses {installed}"


def test_shared_packages_import_neither_controller_nor_edge_agent() -> None:
    bad = [f"{imp.importer}:{imp.line} imports {imp.target}"
           for module, imports in _graph().items() if _in_package(module, SHARED)
           for imp in imports if _in_package(imp.target, ("controller", "edge_agent"))]
    assert not bad, "schedules/, audio/ and devices/ must not import controller or edge_agent:\n" + "\n".join(bad)


def test_edge_agent_does_not_import_controller() -> None:
    bad = [f"{imp.importer}:{imp.line} imports {imp.target}"
           for module, imports in _graph().items() if _in_package(module, ("edge_agent",))
           for imp in imports if _in_package(imp.target, ("controller",))]
    assert not bad, "edge_agent must not import controller:\n" + "\n".join(bad)


def test_nothing_at_run_time_imports_the_tools() -> None:
    """controller/tools/ (demo, local stack, installer, audit CLI) is reached only through the console script."""
    bad = [f"{imp.importer}:{imp.line} imports {imp.target}"
           for module, imports in _graph().items()
           if _in_package(module, FIRST_PARTY) and not _in_package(module, ("controller.tools", *DISPATCHER))
           for imp in imports if _in_package(imp.target, ("controller.tools",))]
    assert not bad, "only loaphuong.cli may import controller.tools:\n" + "\n".join(bad)


def test_edge_agent_imports_no_controller_only_dependency_even_through_shared_modules() -> None:
    agent_modules = [m for m in _modules() if _in_package(m, ("edge_agent",))]
    parent = _reachable(agent_modules)
    reached = [_chain(parent, m) for m in parent if _in_package(m, ("controller",))]
    assert not reached, "the agent reaches controller modules:\n" + "\n".join(reached)
    forbidden = controller_only()
    bad = [f"{imp.importer}:{imp.line} imports {imp.target} ({forbidden[top]}, controller only) — "
           f"reached as {_chain(parent, imp.importer)}"
           for module in parent for imp in _graph()[module]
           if (top := imp.target.split(".")[0]) in forbidden]
    assert not bad, "the agent must not import a controller-only dependency:\n" + "\n".join(bad)


# --------------------------------------------------------------------------------------------------
# One way out to the broker: only the outbox signs and publishes (controller/messaging/outbox.py)

#: The controller's package that alone reaches the broker, and the composition root that builds the link.
BROKER_GATE = ("controller.messaging",)
COMPOSITION_ROOT = ("controller.runtime",)
#: Modules that hold a broker connection: importing any of them is a second way out.
MQTT_MODULES = ("devices.mqtt_link", "aiomqtt", "paho", "gmqtt", "amqtt")


def _receiver_name(node: ast.expr) -> str:
    """The last name of the object an attribute is read from: ``self._link.publish`` → ``_link``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _broker_bypasses(name: str, path: Path) -> list[str]:
    """Where a controller module publishes, signs or holds a broker connection on its own.

    * ``.publish`` read from an object whose name says it is a link (``link``, ``self._link``,
      ``controller.link``), called or handed on (``partial(controller.link.publish, …)``); and ``.close``
      called with arguments on one (its final messages are publishes);
    * ``.command`` read from a signer (``self.signer.command(…)`` builds a signed command);
    * outside the composition root, any import of the MQTT link module or of an MQTT client library.

    An in-process hub's ``publish`` (the camera events' SSE fan-out) is not a link and is not matched.
    """
    found: list[str] = []
    gate_exempt = _in_package(name, COMPOSITION_ROOT)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Attribute):
            receiver = _receiver_name(node.value).lower()
            if node.attr == "publish" and "link" in receiver:
                found.append(f"{name}:{node.lineno} publishes on {ast.unparse(node.value)}")
            elif node.attr == "command" and "signer" in receiver:
                found.append(f"{name}:{node.lineno} signs a command with {ast.unparse(node.value)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "close" \
                and "link" in _receiver_name(node.func.value).lower() and (node.args or node.keywords):
            found.append(f"{name}:{node.lineno} publishes final messages through {ast.unparse(node.func)}")
    if not gate_exempt:
        found += [f"{imp.importer}:{imp.line} imports {imp.target}" for imp in _graph()[name]
                  if _in_package(imp.target, MQTT_MODULES)]
    return found


def test_only_the_outbox_reaches_the_broker() -> None:
    bad = [hit for name, path in _modules().items()
           if _in_package(name, ("controller",)) and not _in_package(name, BROKER_GATE)
           for hit in _broker_bypasses(name, path)]
    assert not bad, ("only controller/messaging/ signs and publishes on the broker (the outbox); the composition "
                     "root may build the link but not publish on it:\n" + "\n".join(bad))


def test_the_broker_rule_sees_what_it_forbids(tmp_path: Path) -> None:
    """Guards the guard: each way out it forbids is found in a module written to break it."""
    sample = tmp_path / "sample.py"
    sample.write_text("from functools import partial\n"
                      "from devices.mqtt_link import MqttLink\n"
                      "import aiomqtt\n"
                      "async def f(self, controller, hub):\n"
                      "    await self.link.publish('t', b'')\n"
                      "    partial(controller.link.publish, 't')\n"
                      "    await self._link.close([('t', b'', True)])\n"
                      "    self.signer.command('x', None)\n"
                      "    hub.publish('not the broker')\n"
                      "    await self.link.close()\n", encoding="utf-8")
    _graph()["controller.sample_under_test"] = _imports_of("controller.sample_under_test", sample)
    try:
        hits = _broker_bypasses("controller.sample_under_test", sample)
    finally:
        del _graph()["controller.sample_under_test"]
    assert sorted(int(h.split(":")[1].split()[0]) for h in hits) == [2, 3, 5, 6, 7, 8], hits


# --------------------------------------------------------------------------------------------------
# The same on the real interpreter


def test_importing_the_agent_loads_no_controller_only_package(tmp_path: Path) -> None:
    # The real way in: `loaphuong agent --config FILE` (a missing file, so it stops once the agent's CLI is
    # loaded), then the agent itself.
    code = ("import importlib, json, sys\n"
            "from loaphuong.cli import main\n"
            "try:\n"
            "    main(['agent', '--config', sys.argv[1]])\n"
            "except SystemExit:\n"
            "    pass\n"
            "importlib.import_module('edge_agent.agent')\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.stdout.strip(), proc.stderr
    loaded = json.loads(proc.stdout.splitlines()[-1])
    assert "edge_agent.agent" in loaded and "edge_agent.cli" in loaded
    tops = {name.split(".")[0] for name in loaded}
    forbidden = controller_only()
    assert not {t: forbidden[t] for t in tops if t in forbidden}, "controller-only packages loaded by the agent"
    assert "controller" not in tops
    # The AST walk must have seen every first-party module the agent really loads, or the rule above would
    # be blind to what those modules import (through importlib.import_module, say).
    walked = set(_reachable(m for m in _modules() if _in_package(m, ("edge_agent",)))) | set(DISPATCHER)
    missed = {name for name in loaded if name in _modules()} - walked
    assert not missed, f"loaded by the agent but not found by the import walk: {sorted(missed)}"


def test_the_engine_worker_started_by_path_finds_libraries_not_our_modules() -> None:
    """``audio/engines/worker.py`` is started by its path, which puts its folder first on ``sys.path``: the
    modules beside it (``config``, ``base``, ``chain``...) must not stand in for a library's top-level
    modules of the same name (a ``gtts.py`` there once hid gTTS from the worker)."""
    worker = ROOT / "audio" / "engines" / "worker.py"
    names = sorted(p.stem for p in worker.parent.glob("*.py") if p.stem != "__init__")
    # As Python starts a script: its folder first on sys.path; then the worker's own start-up runs.
    code = ("import importlib.util, json, runpy, sys\n"
            f"sys.path.insert(0, {str(worker.parent)!r})\n"
            f"runpy.run_path({str(worker)!r}, run_name='worker_under_test')['_forget_own_folder']()\n"
            f"specs = {{n: importlib.util.find_spec(n) for n in {names!r}}}\n"
            "print(json.dumps({n: s.origin if s else None for n, s in specs.items()}))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.splitlines()[-1])
    assert {"base", "chain", "config", "workers"} <= set(found)
    ours = {name: origin for name, origin in found.items()
            if origin and Path(origin).resolve().parent == worker.parent}
    assert not ours, f"the worker would import our modules for these names: {ours}"
