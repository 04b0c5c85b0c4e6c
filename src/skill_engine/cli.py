"""`skill-engine serve`: load configuration, then serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import sys

from skill_engine.commands import audit, dev, evaluate, inspect, run
from skill_engine.commands import compile as compile_command
from skill_engine.config import ConfigError, load_settings
from skill_engine.telemetry.logs import configure_logging


def serve() -> int:
    from skill_engine.skills.sources import check_namespaces

    try:
        settings = load_settings()
        check_namespaces(settings.effective_namespaces())
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if settings.workers > 1:
        from skill_engine import workers

        logging.getLogger("skill_engine").info("Listening on: %s", settings.kernel_address)
        return workers.serve(settings)
    from skill_engine import affinity, shutdown
    from skill_engine.app import create_app
    from skill_engine.edge import EdgeLimits

    affinity.pin(0, settings.cpu_affinity, settings.workers)  # before the engine starts its threads
    app = create_app(settings)
    host, port = settings.host_port
    log = logging.getLogger("skill_engine")
    log.info("Listening on: %s", settings.kernel_address)
    # Our middleware writes one line per request (with its duration): no uvicorn access log, no own config.
    runtime = app.state.engine.runtime
    limits = EdgeLimits.from_settings(settings)
    return shutdown.run(app, host, port, runtime, settings.shutdown_grace, limits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="skill-engine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve skills over HTTP (configuration from config.toml, .env, env)")
    evaluate.register(commands)
    inspect.register(commands)
    run.register(commands)
    dev.register(commands)
    compile_command.register(commands)
    audit.register(commands)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve()
    handler = getattr(args, "handler", None)
    return int(handler(args)) if handler is not None else 2


if __name__ == "__main__":
    sys.exit(main())
