"""``loaphuong controller``: run the API, the MQTT link and the workers under uvicorn."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from controller.app import create_app
from controller.settings import Settings


def main(argv: list[str]) -> int:
    """Runs the controller until SIGINT/SIGTERM. Options override ``LP_*`` environment settings."""
    parser = argparse.ArgumentParser(prog="loaphuong controller", description="Run the loaphuong controller.")
    parser.add_argument("--data-dir", type=Path, help="database, signing key and media (LP_DATA_DIR)")
    parser.add_argument("--host", help="HTTP listen address (LP_HTTP_HOST)")
    parser.add_argument("--port", type=int, help="HTTP port (LP_HTTP_PORT)")
    parser.add_argument("--mqtt-host", help="broker address (LP_MQTT_HOST)")
    parser.add_argument("--mqtt-port", type=int, help="broker port (LP_MQTT_PORT)")
    parser.add_argument("--public-url", help="URL agents fetch media from (LP_PUBLIC_URL)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in {
        "data_dir": args.data_dir, "http_host": args.host, "http_port": args.port,
        "mqtt_host": args.mqtt_host, "mqtt_port": args.mqtt_port, "public_url": args.public_url,
    }.items() if v is not None}
    settings = Settings(**overrides)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s controller %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port,
                log_level=settings.log_level.lower(), access_log=False, timeout_graceful_shutdown=5)
    return 0
