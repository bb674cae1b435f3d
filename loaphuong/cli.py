"""The ``loaphuong`` command: one entry point, each subcommand imported only when chosen.

The agent's subcommand must never import a controller-only dependency (a Pi Zero has 512 MB), so
nothing here imports either side at module level.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

_USAGE = """usage: loaphuong <command> [options]

commands:
  controller   run the central controller (API, MQTT link, media store)
  agent        run an edge agent: loaphuong agent --config agent.toml
  install      place the systemd units and a default config: loaphuong install agent [--root DIR]
  firmware     first-boot bundle for an SD card:
               loaphuong firmware bundle --profile pi4-usb --controller URL --code XXXX-XXXX -o DIR
  demo         run Mosquitto, a controller and three agents on this machine
  tts          speak Vietnamese text to an audio file: loaphuong tts "Xin chào" -o out.ogg
  sign         draw what an LED board shows: loaphuong sign render "Thông báo" --size 96x16 -o page.png
  audit        check the audit log's hash chain: loaphuong audit verify [--data-dir DIR]
"""


def _controller(argv: list[str]) -> int:
    from controller.cli import main

    return main(argv)


def _agent(argv: list[str]) -> int:
    from edge_agent.cli import main

    return main(argv)


def _install(argv: list[str]) -> int:
    from controller.tools.install import main

    return main(argv)


def _firmware(argv: list[str]) -> int:
    from firmware_configs.cli import main

    return main(argv)


def _demo(argv: list[str]) -> int:
    from controller.tools.demo import main

    return main(argv)


def _tts(argv: list[str]) -> int:
    from audio.cli import main

    return main(argv)


def _sign(argv: list[str]) -> int:
    from devices.led.cli import main

    return main(argv)


def _audit(argv: list[str]) -> int:
    from controller.tools.audit_cli import main

    return main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "controller": _controller,
    "agent": _agent,
    "install": _install,
    "firmware": _firmware,
    "demo": _demo,
    "tts": _tts,
    "sign": _sign,
    "audit": _audit,
}


def main(argv: list[str] | None = None) -> int:
    """Dispatches to a subcommand; returns the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(_USAGE)
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from loaphuong import __version__

        print(__version__)
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"loaphuong: unknown command {args[0]!r}\n\n{_USAGE}", file=sys.stderr)
        return 2
    return command(args[1:])


if __name__ == "__main__":
    sys.exit(main())
