"""`skill-engine serve`: load configuration, then serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from skill_engine.config import ConfigError, load_settings

_LEVELS = {
    "trace": "DEBUG",
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
    "off": "CRITICAL",
}


def _level(log_level: str) -> str:
    # PhariaEngine takes an EnvFilter directive (`info,foo=debug`); the first plain level counts here.
    for part in log_level.split(","):
        if "=" not in part and part.strip().lower() in _LEVELS:
            return _LEVELS[part.strip().lower()]
    return "INFO"


def serve() -> int:
    try:
        settings = load_settings()
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    level = _level(settings.log_level)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )
    from skill_engine.app import create_app

    app = create_app(settings)
    host, port = settings.host_port
    log = logging.getLogger("skill_engine")
    log.info("Listening on: %s", settings.kernel_address)
    uvicorn.run(app, host=host, port=port, log_level=level.lower(), timeout_graceful_shutdown=30)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="skill-engine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve skills over HTTP (configuration from config.toml, .env, env)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve()
    return 2


if __name__ == "__main__":
    sys.exit(main())
