"""``python -m controller.cameras.onvif``: what registration would read from a camera, as JSON."""

from __future__ import annotations

import asyncio

from controller.cameras.onvif.describe import describe
from controller.cameras.onvif.errors import CameraError


def main(argv: list[str] | None = None) -> int:
    """``python -m controller.cameras.onvif HOST [PORT] --username U``: what registration would read, as JSON.

    The password comes from ``LOAPHUONG_CAMERA_PASSWORD`` or a prompt, never the command line (which
    other users can see in the process list).
    """
    import argparse
    import dataclasses
    import getpass
    import json
    import os
    import sys

    parser = argparse.ArgumentParser(prog="python -m controller.cameras.onvif",
                                     description="Read an ONVIF camera as registration would (device information, "
                                                 "H.264 profiles, stream and snapshot URIs, PTZ).")
    parser.add_argument("host")
    parser.add_argument("port", nargs="?", type=int, default=80)
    parser.add_argument("--username", default="admin")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for the whole conversation")
    args = parser.parse_args(argv)
    password = os.environ.get("LOAPHUONG_CAMERA_PASSWORD")
    if password is None:
        password = getpass.getpass(f"password of {args.username} on {args.host}: ")
    try:
        desc = asyncio.run(describe(args.host, args.port, args.username, password, timeout_s=args.timeout))
    except CameraError as exc:
        print(json.dumps({"error": exc.reason, "message": exc.message}, ensure_ascii=False), file=sys.stderr)
        return 2
    print(json.dumps(dataclasses.asdict(desc), ensure_ascii=False, indent=2))
    return 0

