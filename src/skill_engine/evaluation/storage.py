"""Where datasets, runs and results live: one SQLAlchemy schema, an SQLite file or a PostgreSQL database.

SQLite (the default, in the engine's data directory) keeps a single engine's evaluations across restarts;
PostgreSQL (`EVALUATIONS__DATABASE_URL`) lets every replica of a fleet see the same datasets and runs. The
schema is created and upgraded by Alembic migrations when the engine starts. Calls are synchronous and
short; the API runs them on a worker thread so the event loop never waits on the database.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from skill_engine.evaluation.datasets import Example

metadata = sa.MetaData()

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
examples = sa.Table(
    "examples",
    metadata,
    sa.Column(
        "dataset_id", sa.String(36), sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("example", sa.Text, nullable=False),
)
runs = sa.Table(
    "evaluation_runs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("skill", sa.String(200), nullable=False),
    sa.Column("dataset_id", sa.String(36), nullable=False, index=True),
    sa.Column("evaluators", sa.Text, nullable=False),
    sa.Column("concurrency", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("reason", sa.Text),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(100)),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
)
results = sa.Table(
    "evaluation_results",
    metadata,
    sa.Column(
        "run_id", sa.String(36), sa.ForeignKey("evaluation_runs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("result", sa.Text, nullable=False),
)

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    size: int
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "examples": self.size, "created_at": _iso(self.created_at)}


@dataclass
class Run:
    id: str
    namespace: str
    skill: str
    dataset_id: str
    evaluators: list[Any]
    concurrency: int
    status: str
    total: int
    started_at: float
    heartbeat_at: float
    reason: str | None = None
    digest: str | None = None
    finished_at: float | None = None
    done: int = 0


@dataclass
class Result:
    position: int
    input: Any
    expected: Any
    has_expected: bool
    output: Any = None
    error: str | None = None
    status: int = 200
    scores: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float = 0.0
    tokens: dict[str, int] = field(default_factory=dict)
    judge_tokens: dict[str, int] = field(default_factory=dict)
    trace_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"index": self.position, "input": self.input}
        if self.has_expected:
            value["expected"] = self.expected
        if self.error is None:
            value["output"] = self.output
        else:
            value["error"] = self.error
        value |= {
            "status": self.status,
            "scores": self.scores,
            "latency_ms": round(self.latency_ms, 3),
            "tokens": self.tokens,
            "judge_tokens": self.judge_tokens,
            "trace_id": self.trace_id,
        }
        return value

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Result:
        return cls(
            position=value["index"],
            input=value["input"],
            expected=value.get("expected"),
            has_expected="expected" in value,
            output=value.get("output"),
            error=value.get("error"),
            status=value["status"],
            scores=value["scores"],
            latency_ms=value["latency_ms"],
            tokens=value["tokens"],
            judge_tokens=value["judge_tokens"],
            trace_id=value["trace_id"],
        )


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp % 1 * 1000):03d}Z"


def database_url(url: str | None, data_directory: Path) -> str:
    """`postgresql://` means psycopg 3; no URL means an SQLite file in the data directory."""
    if url is None:
        data_directory.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{data_directory / 'evaluations.db'}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Storage:
    """Datasets, runs and their results; every method is one short transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = sa.create_engine(url, pool_pre_ping=True, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    def migrate(self) -> None:
        from skill_engine.evaluation.migrations import upgrade

        upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # Datasets

    def add_dataset(self, name: str, items: Sequence[Example]) -> Dataset:
        dataset = Dataset(str(uuid.uuid4()), name, len(items), time.time())
        with self.engine.begin() as db:
            db.execute(datasets.insert().values(**dataset.__dict__))
            db.execute(
                examples.insert(),
                [
                    {"dataset_id": dataset.id, "position": i, "example": json.dumps(e.to_json())}
                    for i, e in enumerate(items)
                ],
            )
        return dataset

    def datasets(self) -> list[Dataset]:
        with self.engine.connect() as db:
            rows = db.execute(datasets.select().order_by(datasets.c.created_at.desc())).all()
        return [Dataset(**row._mapping) for row in rows]

    def dataset(self, dataset_id: str) -> Dataset | None:
        with self.engine.connect() as db:
            row = db.execute(datasets.select().where(datasets.c.id == dataset_id)).first()
        return None if row is None else Dataset(**row._mapping)

    def examples(self, dataset_id: str, offset: int = 0, limit: int | None = None) -> list[Example]:
        query = (
            sa.select(examples.c.example)
            .where(examples.c.dataset_id == dataset_id)
            .order_by(examples.c.position)
            .offset(offset)
            .limit(limit)
        )
        with self.engine.connect() as db:
            rows = db.execute(query).scalars().all()
        return [_example(json.loads(text)) for text in rows]

    def delete_dataset(self, dataset_id: str) -> bool:
        with self.engine.begin() as db:
            db.execute(examples.delete().where(examples.c.dataset_id == dataset_id))
            return db.execute(datasets.delete().where(datasets.c.id == dataset_id)).rowcount > 0

    # Runs

    def add_run(self, run: Run) -> None:
        with self.engine.begin() as db:
            db.execute(runs.insert().values(**_run_row(run)))

    def run(self, run_id: str) -> Run | None:
        with self.engine.connect() as db:
            row = db.execute(runs.select().where(runs.c.id == run_id)).first()
            if row is None:
                return None
            done = db.execute(
                sa.select(sa.func.count()).select_from(results).where(results.c.run_id == run_id)
            ).scalar_one()
        return _run(row._mapping, done)

    def runs(self) -> list[Run]:
        counts = (
            sa.select(results.c.run_id, sa.func.count().label("done")).group_by(results.c.run_id).subquery()
        )
        query = (
            sa.select(runs, sa.func.coalesce(counts.c.done, 0).label("done"))
            .select_from(runs.outerjoin(counts, runs.c.id == counts.c.run_id))
            .order_by(runs.c.started_at.desc())
        )
        with self.engine.connect() as db:
            rows = db.execute(query).all()
        return [_run(row._mapping, row._mapping["done"]) for row in rows]

    def update_run(self, run_id: str, **values: Any) -> None:
        with self.engine.begin() as db:
            db.execute(runs.update().where(runs.c.id == run_id).values(**values))

    def finish_run(self, run_id: str, status: str, reason: str | None = None) -> bool:
        """Ends a run that is still running; False when someone (a cancel, a sweep) ended it first."""
        with self.engine.begin() as db:
            changed = db.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == RUNNING)
                .values(status=status, reason=reason, finished_at=time.time())
            ).rowcount
        return changed > 0

    def fail_stale_runs(self, older_than: float, reason: str) -> list[str]:
        """Runs whose engine stopped sending heartbeats (it died or restarted) are failed, never left
        running."""
        now = time.time()
        with self.engine.begin() as db:
            stale = (
                db.execute(
                    sa.select(runs.c.id).where(
                        runs.c.status == RUNNING, runs.c.heartbeat_at < now - older_than
                    )
                )
                .scalars()
                .all()
            )
            if stale:
                db.execute(
                    runs.update()
                    .where(runs.c.id.in_(stale), runs.c.status == RUNNING)
                    .values(status=FAILED, reason=reason, finished_at=now)
                )
        return list(stale)

    def delete_run(self, run_id: str) -> bool:
        with self.engine.begin() as db:
            db.execute(results.delete().where(results.c.run_id == run_id))
            return db.execute(runs.delete().where(runs.c.id == run_id)).rowcount > 0

    # Results

    def add_result(self, run_id: str, result: Result) -> None:
        with self.engine.begin() as db:
            db.execute(
                results.insert().values(
                    run_id=run_id, position=result.position, result=json.dumps(result.to_json())
                )
            )

    def results(self, run_id: str, offset: int = 0, limit: int | None = None) -> list[Result]:
        query = (
            sa.select(results.c.result)
            .where(results.c.run_id == run_id)
            .order_by(results.c.position)
            .offset(offset)
            .limit(limit)
        )
        with self.engine.connect() as db:
            rows = db.execute(query).scalars().all()
        return [Result.from_json(json.loads(text)) for text in rows]

    def iter_results(self, run_id: str, page: int = 500) -> Iterator[Result]:
        offset = 0
        while batch := self.results(run_id, offset, page):
            yield from batch
            offset += len(batch)


def _sqlite_pragmas(connection: Any, record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (another process) never block the run's writes
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _example(value: dict[str, Any]) -> Example:
    return Example(value["input"], value.get("expected"), value.get("metadata") or {}, "expected" in value)


def _run_row(run: Run) -> dict[str, Any]:
    row = {k: v for k, v in run.__dict__.items() if k != "done"}
    row["evaluators"] = json.dumps(run.evaluators)
    return row


def _run(row: Any, done: int) -> Run:
    values = dict(row)
    values.pop("done", None)
    values["evaluators"] = json.loads(values["evaluators"])
    return Run(**values, done=done)
