"""`skill-engine dev ./skills`: serve the `.wasm` files of a directory as the namespace `dev`, picking up
added, changed and removed files within a second, and print the console's URL (it opens nothing).

Everything else is configured as for `serve` (config.toml, .env, environment); configured namespaces are
replaced by the directory. `--address` overrides KERNEL_ADDRESS (default 127.0.0.1:8081 here, so a
development engine is not reachable from the network unless asked).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

DEV_NAMESPACE = "dev"
DEV_INTERVAL = 1.0


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "dev",
        help="serve a directory of skills with change detection and print the console URL",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", type=Path, nargs="?", default=Path("skills"), help="default: ./skills")
    parser.add_argument("--address", help="HOST:PORT to listen on (default: 127.0.0.1:8081)")
    parser.set_defaults(handler=main)


def console_url(address: str) -> str:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/ui"


def main(args: argparse.Namespace) -> int:
    from skill_engine import shutdown
    from skill_engine.app import create_app
    from skill_engine.commands.local import CommandError, settings_or_exit, stderr
    from skill_engine.config import NamespaceConfig
    from skill_engine.telemetry.logs import configure_logging

    directory: Path = args.directory.resolve()
    try:
        if not directory.is_dir():
            raise CommandError(f"{args.directory} is not a directory", 2)
        settings = settings_or_exit()
    except CommandError as e:
        stderr.print(f"[red]Error:[/red] {e.message}", markup=True, highlight=False)
        return e.status
    # One process: what the console shows (recorded executions) lives in it.
    update: dict[str, Any] = {
        "namespaces": {DEV_NAMESPACE: NamespaceConfig(directory=directory)},
        "workers": 1,
    }
    if args.address:
        update["kernel_address"] = args.address
    elif "KERNEL_ADDRESS" not in os.environ:
        update["kernel_address"] = "127.0.0.1:8081"
    if "NAMESPACE_UPDATE_INTERVAL" not in os.environ:
        update["namespace_update_interval"] = DEV_INTERVAL
    settings = settings.model_copy(update=update)
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    host, port = settings.host_port
    print(f"Serving {directory} as namespace `{DEV_NAMESPACE}` (changes are picked up within a second)")
    print(f"Skill Console: {console_url(settings.kernel_address)}", flush=True)
    return shutdown.run(app, host, port, app.state.engine.runtime, settings.shutdown_grace)
