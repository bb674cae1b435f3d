"""``loaphuong firmware bundle``: the first-boot files for a new Pi's SD card."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from firmware_configs.cloud_init import DEFAULT_REPO, BundleError, BundleOptions, render, write
from firmware_configs.profiles import ProfileError, get_profile

_TEXT = {
    "vi": {"wrote": "Đã ghi {path}",
           "next": "Chép các tệp này vào phân vùng boot của thẻ SD (cạnh ảnh hệ điều hành có cloud-init); "
                   "lần khởi động đầu sẽ cài agent và đăng ký với {url}."},
    "en": {"wrote": "Wrote {path}",
           "next": "Copy these files onto the SD card's boot partition (next to an OS image with cloud-init); "
                   "the first boot installs the agent and enrols it with {url}."},
}


def main(argv: list[str]) -> int:
    """Renders the bundle; exit 2 on a bad profile or option (the message names it)."""
    parser = argparse.ArgumentParser(prog="loaphuong firmware", description="Board profiles and first-boot files.")
    sub = parser.add_subparsers(dest="command", required=True)
    bundle = sub.add_parser("bundle", help="cloud-init user-data/network-config/meta-data for a new Pi")
    bundle.add_argument("--profile", required=True, help="board profile name in firmware_configs/ (pi4-usb …)")
    bundle.add_argument("--controller", required=True, help="the controller's URL, https://…")
    bundle.add_argument("--code", required=True, help="the device's one-time enrolment code, XXXX-XXXX")
    bundle.add_argument("--hostname", default=None, help="the Pi's host name (default loa-<code>)")
    bundle.add_argument("--repo", default=DEFAULT_REPO, help="git URL loaphuong is installed from")
    bundle.add_argument("--wifi-ssid", default=None, help="Wi-Fi profiles: the network to join")
    bundle.add_argument("--wifi-password", default=None, help="Wi-Fi profiles: its passphrase")
    bundle.add_argument("-o", "--output", type=Path, required=True, help="directory to write the files into")
    env_lang = os.environ.get("LOAPHUONG_LANG", "vi")
    bundle.add_argument("--lang", choices=sorted(_TEXT), default=env_lang if env_lang in _TEXT else "vi")
    args = parser.parse_args(argv)
    text = _TEXT[args.lang]
    hostname = args.hostname or "loa-" + args.code.replace("-", "").lower()
    try:
        profile = get_profile(args.profile)
        files = render(profile, BundleOptions(controller_url=args.controller, code=args.code, hostname=hostname,
                                              repo=args.repo, wifi_ssid=args.wifi_ssid,
                                              wifi_password=args.wifi_password))
        paths = write(files, args.output)
    except (ProfileError, BundleError) as exc:
        print(f"loaphuong firmware: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"loaphuong firmware: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(text["wrote"].format(path=path))
    print(text["next"].format(url=args.controller))
    return 0
