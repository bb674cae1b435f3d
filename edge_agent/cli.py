"""``loaphuong agent --config agent.toml``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from edge_agent.config import ConfigError, load_config


def main(argv: list[str]) -> int:
    """Runs an agent until SIGINT/SIGTERM; exit 2 on a bad config, 75 when asked to restart (``ops.restart``)."""
    if argv[:1] == ["enroll"]:
        # Enrolment runs once at installation: fetch the identity with a one-time code, write the config.
        from edge_agent.enrol import main as enrol

        return enrol(argv[1:])
    parser = argparse.ArgumentParser(prog="loaphuong agent", description="Run a loaphuong edge agent.")
    parser.add_argument("--config", "-c", type=Path, required=True, help="agent TOML file")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"loaphuong agent: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=cfg.log_level,
                        format=f"%(asctime)s %(levelname)s agent[{cfg.agent_id}] %(name)s: %(message)s")
    from edge_agent.agent import Agent

    async def run() -> int:
        agent = Agent(cfg, args.config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, agent.request_stop)
        await agent.run()
        return agent.ops.exit_code

    return asyncio.run(run())
