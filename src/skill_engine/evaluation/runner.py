"""Evaluation runs: invoke a skill once per example, score each output, store every result as it lands.

A run is a background task of the engine that created it, so it survives the client that started it.
While it runs it writes a heartbeat; a run whose heartbeat stops (its engine died or restarted) is
marked `failed` by whichever engine sweeps next, never left `running`. Cancelling (DELETE) stops the
in-flight invocations and keeps the finished results; a cancel received by another replica reaches the
owner through the stored status, which the owner checks with each heartbeat.
The caller's token is kept in memory only, for the run's CSI calls; it is never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from typing import Any

from skill_engine.csi import Csi, CsiContext
from skill_engine.csi.types import ChatParams, ChatRequest, Message
from skill_engine.evaluation.datasets import Example
from skill_engine.evaluation.evaluators import Evaluator, Score, build
from skill_engine.evaluation.invoker import SkillInvoker
from skill_engine.evaluation.storage import CANCELLED, DONE, FAILED, RUNNING, Result, Run, Storage
from skill_engine.governance import audit
from skill_engine.governance.audit_log import AuditLog
from skill_engine.telemetry.usage import metered

log = logging.getLogger("skill_engine.evaluation")

HEARTBEAT = 2.0
STALE_AFTER = 15.0
"""Seconds without a heartbeat after which a run counts as abandoned by its engine."""
STALE_REASON = "The engine running this evaluation stopped before it finished (restart or crash)."
MAX_CONCURRENCY = 64


def _redacted(error: BaseException) -> str:
    """Database errors can quote the connection URL: never its password."""
    return re.sub(r"://([^:/@\s]+):[^@\s]*@", r"://\1:***@", f"{type(error).__name__}: {error}")


class RunError(ValueError):
    """A run that cannot be created; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class Evaluations:
    def __init__(
        self,
        storage: Storage,
        invoker: SkillInvoker,
        csi: Csi,
        max_concurrency: int,
        audit_log: AuditLog | None = None,
    ) -> None:
        self.storage = storage
        self.audit_log = audit_log
        """Every example's invocation (and its judge's calls) is one `evaluation` record."""
        self.invoker = invoker
        self.csi = csi
        self.max_concurrency = min(max_concurrency, MAX_CONCURRENCY)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._sweeping: asyncio.Task[None] | None = None
        self.unavailable: str | None = "The evaluation storage is not ready yet."
        """Why evaluations cannot be served now (storage unreachable at start); None when they can."""

    async def start(self) -> None:
        """Skills keep serving when the database is down: only the evaluation routes answer 503."""
        try:
            await asyncio.to_thread(self.storage.migrate)
            await self._sweep()
        except Exception as e:
            log.error("evaluation storage unavailable (%s): evaluation routes answer 503", _redacted(e))
            self.unavailable = "The evaluation storage is unavailable; see the engine's log."
        else:
            self.unavailable = None
        self._sweeping = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        """Shutdown: runs still going are failed now (with a reason), not left to the sweep."""
        if self._sweeping is not None:
            self._sweeping.cancel()
        for run_id, task in list(self._tasks.items()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            await asyncio.to_thread(
                self.storage.finish_run,
                run_id,
                FAILED,
                "The engine shut down before the evaluation finished.",
            )
        await asyncio.to_thread(self.storage.close)

    async def _sweep(self) -> None:
        failed = await asyncio.to_thread(self.storage.fail_stale_runs, STALE_AFTER, STALE_REASON)
        for run_id in failed:
            log.warning("evaluation %s was abandoned by its engine: marked failed", run_id)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(STALE_AFTER / 3)
            try:
                if self.unavailable is not None:
                    await asyncio.to_thread(self.storage.migrate)
                    self.unavailable = None
                    log.info("evaluation storage is available again")
                await self._sweep()
            except Exception as e:
                log.warning("evaluation storage: %s", _redacted(e))

    def validate(self, body: Any, known_skill: Any) -> tuple[str, str, str, list[Evaluator], list[Any], int]:
        if not isinstance(body, dict):
            raise RunError(
                400, "The body must be a JSON object with `namespace`, `skill`, `dataset`, `evaluators`."
            )
        for key in ("namespace", "skill", "dataset"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise RunError(400, f"`{key}` is required and must be a string.")
        try:
            evaluators = build(body.get("evaluators"))
        except ValueError as e:
            raise RunError(400, str(e)) from None
        concurrency = body.get("concurrency", 4)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not concurrency >= 1:
            raise RunError(400, "`concurrency` must be a whole number of at least 1.")
        if concurrency > self.max_concurrency:
            raise RunError(400, f"`concurrency` is at most {self.max_concurrency} on this engine.")
        if not known_skill(body["namespace"], body["skill"]):
            raise RunError(404, f"Skill `{body['namespace']}/{body['skill']}` not found.")
        return body["namespace"], body["skill"], body["dataset"], evaluators, body["evaluators"], concurrency

    async def create(self, body: Any, token: str | None, known_skill: Any) -> Run:
        namespace, skill, dataset_id, evaluators, specs, concurrency = self.validate(body, known_skill)
        dataset = await asyncio.to_thread(self.storage.dataset, dataset_id)
        if dataset is None:
            raise RunError(404, f"Dataset `{dataset_id}` not found.")
        now = time.time()
        run = Run(
            id=str(uuid.uuid4()),
            namespace=namespace,
            skill=skill,
            dataset_id=dataset_id,
            evaluators=specs,
            concurrency=concurrency,
            status=RUNNING,
            total=dataset.size,
            started_at=now,
            heartbeat_at=now,
        )
        await asyncio.to_thread(self.storage.add_run, run)
        caller = audit.evaluating(namespace, skill, run.id)
        task = asyncio.create_task(self._execute(run, evaluators, token, caller))
        self._tasks[run.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run.id, None))
        log.info("evaluation %s of %s/%s on %d examples started", run.id, namespace, skill, dataset.size)
        return run

    async def cancel(self, run_id: str) -> bool:
        """True if the run was running and is now cancelled."""
        cancelled = await asyncio.to_thread(
            self.storage.finish_run, run_id, CANCELLED, "Cancelled by request."
        )
        task = self._tasks.get(run_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return cancelled

    async def _execute(
        self,
        run: Run,
        evaluators: list[Evaluator],
        token: str | None,
        caller: tuple[str, str | None] | None = None,
    ) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(run.id, asyncio.current_task()))
        try:
            examples = await asyncio.to_thread(self.storage.examples, run.dataset_id)
            limit = asyncio.Semaphore(run.concurrency)

            async def one(position: int, example: Example) -> None:
                async with limit:
                    result = await self._audited(run, position, example, evaluators, token, caller)
                    await asyncio.to_thread(self.storage.add_result, run.id, result)

            async with asyncio.TaskGroup() as group:
                for position, example in enumerate(examples):
                    group.create_task(one(position, example))
            await asyncio.to_thread(self.storage.finish_run, run.id, DONE)
            log.info("evaluation %s done", run.id)
        except asyncio.CancelledError:
            log.info("evaluation %s cancelled", run.id)
        except Exception as e:
            log.exception("evaluation %s failed", run.id)
            reason = f"The evaluation failed: {type(e).__name__}: {e}"
            await asyncio.to_thread(self.storage.finish_run, run.id, FAILED, reason)
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, run_id: str, owner: asyncio.Task[Any] | None) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                run = await asyncio.to_thread(self.storage.run, run_id)
                if run is None or run.status != RUNNING:  # cancelled or deleted through another replica
                    if owner is not None:
                        owner.cancel()
                    return
                await asyncio.to_thread(self.storage.update_run, run_id, heartbeat_at=time.time())
            except Exception:
                log.exception("heartbeat of evaluation %s failed", run_id)

    async def _audited(
        self,
        run: Run,
        position: int,
        example: Example,
        evaluators: list[Evaluator],
        token: str | None,
        caller: tuple[str, str | None] | None,
    ) -> Result:
        """`_evaluate` with its own audit record, written like a live invocation's (docs/governance.md)."""
        if self.audit_log is None:
            return await self._evaluate(run, position, example, evaluators, token)
        record = audit.AuditRecord("evaluation", run.namespace, run.skill, evaluation=run.id)
        if caller is not None:
            record.subject, record.email = caller
        opened = audit.begin(record)
        try:
            return await self._evaluate(run, position, example, evaluators, token)
        except asyncio.CancelledError:
            if record.status is None:
                record.status = 499  # cancelled with the run, like a client going away
            raise
        finally:
            audit.end(opened)
            if record.status is None:
                record.status = 500
            self.audit_log.write(record.to_json())

    async def _evaluate(
        self, run: Run, position: int, example: Example, evaluators: list[Evaluator], token: str | None
    ) -> Result:
        outcome = await self.invoker.invoke(run.namespace, run.skill, example.input, token)
        audit.answered(outcome.status, outcome.error_kind, outcome.trace_id)
        if outcome.digest is not None and run.digest is None:
            run.digest = outcome.digest
            await asyncio.to_thread(self.storage.update_run, run.id, digest=outcome.digest)
        result = Result(
            position=position,
            input=example.input,
            expected=example.expected,
            has_expected=example.has_expected,
            output=outcome.output,
            error=outcome.error,
            status=outcome.status,
            latency_ms=outcome.latency_ms,
            tokens=outcome.tokens,
            trace_id=outcome.trace_id,
        )
        if outcome.error is not None:
            return result
        judge_tokens: dict[str, int] = {}
        for evaluator in evaluators:
            score = await self._score(evaluator, outcome.output, example, run, token)
            result.scores.append(score.to_json(evaluator.name))
            for key, value in (score.tokens or {}).items():
                judge_tokens[key] = judge_tokens.get(key, 0) + value
        result.judge_tokens = judge_tokens
        return result

    async def _score(
        self, evaluator: Evaluator, output: Any, example: Example, run: Run, token: str | None
    ) -> Score:
        async def judge(model: str, prompt: str) -> tuple[str, dict[str, int]]:
            ctx = CsiContext(run.namespace, run.skill, token)
            request = ChatRequest(
                model, [Message("user", prompt)], ChatParams(max_tokens=256, temperature=0.0)
            )
            with metered() as usage:
                (response,) = await self.csi.inference.chat([request], ctx)
            return response.message.content or "", usage.to_json()

        try:
            return await evaluator.score(output, example, judge)
        except Exception as e:  # the judge's backend failing is a zero with its reason, not a crashed run
            text = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
            return Score(0.0, False, f"the evaluator failed: {text}")
