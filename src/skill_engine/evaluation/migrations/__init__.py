"""Alembic migrations of the evaluation schema, run by the engine at start-up (no `alembic.ini` needed).

A new schema change is a new file in `versions/` (`down_revision` = the previous one); every replica
upgrades on start, and Alembic's version table serializes concurrent upgrades on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

HERE = Path(__file__).resolve().parent
_LOCK_KEY = 0x5E_E7A1
"""PostgreSQL advisory lock id held while migrating: replicas and workers starting together take turns."""


def upgrade(engine: Engine) -> None:
    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:  # its INFO lines say nothing an operator needs at every start
        alembic_log.setLevel(logging.WARNING)
    config = Config()
    config.set_main_option("script_location", str(HERE))
    with _exclusive(engine), engine.begin() as connection:
        _lock(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextlib.contextmanager
def _exclusive(engine: Engine) -> Iterator[None]:
    """SQLite has no advisory locks: worker processes sharing one file take turns through a lock file."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
