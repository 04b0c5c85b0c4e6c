"""Governance building blocks: policy matching, token budgets, weighted fair admission, the audit trail's
append-only writer across processes and its rotation, and the configuration keys."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from pathlib import Path

import pytest

from skill_engine.config import Settings
from skill_engine.governance.audit_log import AuditLog, files
from skill_engine.governance.budget import TokenBudgets
from skill_engine.governance.policy import Kind, Policies, Policy
from skill_engine.runtime.admission import Admission, Overloaded, Share
from skill_engine.workers import per_worker


def test_absent_lists_allow_empty_lists_deny_patterns_match() -> None:
    policy = Policy.of(models=["llama-*"], collections=[], tools=None)
    assert policy.allows(Kind.MODEL, "llama-3.1-8b")
    assert not policy.allows(Kind.MODEL, "gpt-x")
    assert not policy.allows(Kind.COLLECTION, "finance/reports")
    assert policy.allows(Kind.TOOL, "anything")
    assert policy.allows(Kind.MCP_SERVER, "http://any")


def test_default_policy_binds_namespaces_without_their_own_and_always_csi_over_http() -> None:
    policies = Policies(
        {"fin": Policy.of(models=["llama-*", "gpt-x"])}, default=Policy.of(models=["llama-*"])
    )
    assert policies.allows("fin", Kind.MODEL, "gpt-x")
    assert not policies.allows("other", Kind.MODEL, "gpt-x")
    assert not policies.allows(None, Kind.MODEL, "gpt-x", over_http=True)
    # Naming a namespace over HTTP never widens the default.
    assert not policies.allows("fin", Kind.MODEL, "gpt-x", over_http=True)
    assert policies.allows("fin", Kind.MODEL, "llama-2", over_http=True)
    assert Policies().allows("any", Kind.MODEL, "gpt-x")


def test_csi_over_http_is_closed_for_kinds_namespaces_restrict_until_a_default_policy_opens_them() -> None:
    # No `[policy]`: a namespace restricts models, so CSI over HTTP may use no model, whichever
    # namespace it names (naming one must not pick a more permissive policy); collections stay open.
    policies = Policies({"fin": Policy.of(models=["llama-*"]), "open": Policy.of(tools=["add"])})
    for named in (None, "fin", "open", "unknown"):
        assert not policies.allows(named, Kind.MODEL, "llama-3", over_http=True)
        assert policies.denied_by(named, Kind.MODEL, "llama-3", over_http=True) == (None,)
        assert policies.allows(named, Kind.COLLECTION, "finance/reports", over_http=True)
    assert not policies.allows("open", Kind.TOOL, "add", over_http=True)
    # Skills keep their own namespace's policy; a namespace without one stays open.
    assert policies.allows("fin", Kind.MODEL, "llama-3")
    assert policies.allows("open", Kind.MODEL, "gpt-x")
    # A default `[policy]` is the baseline: the named namespace narrows it, and is named when it refuses.
    opened = Policies({"fin": Policy.of(models=["llama-*"])}, default=Policy.of(models=["*"]))
    assert opened.allows(None, Kind.MODEL, "gpt-x", over_http=True)
    assert opened.denied_by("fin", Kind.MODEL, "gpt-x", over_http=True) == ("fin",)
    assert opened.allows("fin", Kind.MODEL, "llama-3", over_http=True)
    # Without any policy nothing changes (PhariaEngine's behaviour).
    assert Policies().allows(None, Kind.TOOL, "anything", over_http=True)


def test_token_budget_refuses_once_spent_and_names_the_wait() -> None:
    budgets = TokenBudgets({"acc": 60})
    assert budgets.retry_after("acc") is None
    budgets.spend("acc", 70)  # usage is known only afterwards: the bucket may go below zero
    wait = budgets.retry_after("acc")
    assert wait is not None and 10 <= wait <= 12  # 11 tokens short at one token a second
    assert budgets.retry_after("other") is None


def test_config_reads_policy_and_limits_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESPACES__FIN__DIRECTORY", str(tmp_path))
    monkeypatch.setenv("NAMESPACES__FIN__POLICY__MODELS", '["llama-*"]')
    monkeypatch.setenv("NAMESPACES__FIN__POLICY__MCP_SERVERS", "[]")
    monkeypatch.setenv("NAMESPACES__FIN__LIMITS__CPU_TIME", "5s")
    monkeypatch.setenv("NAMESPACES__FIN__LIMITS__WEIGHT", "3")
    monkeypatch.setenv("NAMESPACES__FIN__LIMITS__TOKENS_PER_MINUTE", "1000")
    fin = Settings().namespaces["fin"]
    assert fin.policy is not None
    assert (fin.policy.models, fin.policy.mcp_servers, fin.policy.collections) == (["llama-*"], [], None)
    assert (fin.limits.cpu_time, fin.limits.weight, fin.limits.tokens_per_minute) == (5.0, 3.0, 1000)


def test_config_reads_kebab_case_tables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text(
        '[namespaces.fin]\ndirectory = "skills"\n[namespaces.fin.policy]\nmcp-servers = ["http://mcp/*"]\n'
        '[namespaces.fin.limits]\nmax-concurrent = 2\nmax-queued = 5\ncpu-time = "1m"\nmemory = "64MiB"\n'
    )
    fin = Settings().namespaces["fin"]
    assert fin.policy is not None and fin.policy.mcp_servers == ["http://mcp/*"]
    assert (fin.limits.max_concurrent, fin.limits.max_queued, fin.limits.cpu_time) == (2, 5, 60.0)
    assert fin.limits.memory == 64 * 1024 * 1024


def test_admission_grants_free_slots_in_proportion_to_weight() -> None:
    async def scenario() -> dict[str, int]:
        admission = Admission(limit=4, queue_length=1000, queue_timeout=30)
        admission.configure("heavy", Share(weight=3))
        admission.configure("light", Share(weight=1))
        finished = {"heavy": 0, "light": 0}
        stop = asyncio.Event()

        async def worker(namespace: str) -> None:
            while not stop.is_set():
                await admission.acquire(namespace)
                try:
                    await asyncio.sleep(0.01)
                finally:
                    admission.release(namespace)
                if not stop.is_set():
                    finished[namespace] += 1

        workers = [asyncio.create_task(worker(ns)) for ns in ("heavy", "light") for _ in range(12)]
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*workers)
        return finished

    finished = asyncio.run(scenario())
    assert 2.3 <= finished["heavy"] / finished["light"] <= 3.7, finished


def test_a_full_queue_still_takes_a_namespace_below_its_share() -> None:
    async def scenario() -> None:
        admission = Admission(limit=2, queue_length=4, queue_timeout=5)
        await admission.acquire("flood")
        await admission.acquire("flood")
        waiting = [asyncio.create_task(admission.acquire("flood")) for _ in range(4)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await admission.acquire("flood")  # beyond its share of the full queue
        trickle = asyncio.create_task(admission.acquire("trickle"))
        await asyncio.sleep(0)
        admission.release("flood")
        await trickle  # the trickle is served before the flood's older waiters
        assert admission.running("trickle") == 1 and admission.queued("flood") == 4
        admission.release("trickle")
        for _ in range(len(waiting) + 1):
            await asyncio.sleep(0)
            admission.release("flood")
        await asyncio.gather(*waiting)
        assert admission.active == 0 and admission.waiting == 0

    asyncio.run(scenario())


def test_reserved_slots_admit_another_namespace_at_once_while_one_floods() -> None:
    async def scenario() -> None:
        admission = Admission(limit=4, queue_length=10, queue_timeout=5, reserve=1)
        admission.configure("flood", Share())
        admission.configure("trickle", Share())
        for _ in range(3):
            await admission.acquire("flood")
        queued = asyncio.create_task(admission.acquire("flood"))
        await asyncio.sleep(0)
        assert admission.running("flood") == 3 and admission.queued("flood") == 1  # one slot stays free
        await asyncio.wait_for(admission.acquire("trickle"), 1)  # at once, not after a flood request
        admission.release("trickle")
        await asyncio.sleep(0)
        assert not queued.done()  # the freed slot is kept again
        admission.release("flood")
        await queued
        assert admission.running("flood") == 3
        for _ in range(3):
            admission.release("flood")

    asyncio.run(scenario())


def test_a_namespace_alone_gets_every_slot_and_the_reserve_is_explained_in_the_429() -> None:
    async def scenario() -> None:
        alone = Admission(limit=4, queue_length=0, queue_timeout=5, reserve=1)
        for _ in range(4):
            await alone.acquire("only")  # no other namespace exists: nothing to keep a slot for
        shared = Admission(limit=4, queue_length=0, queue_timeout=5, reserve=1)
        shared.configure("other", Share())
        for _ in range(3):
            await shared.acquire("flood")
        with pytest.raises(Overloaded) as refused:
            await shared.acquire("flood")
        assert str(refused.value) == (
            "The Kernel is currently overloaded: namespace 'flood' already runs 3 of the 4 skill execution "
            "slots (1 kept for other namespaces) and 0 requests are already waiting. Please try again "
            "later, if the situation persists you may want to contact the operators."
        )
        # One per 16 slots by default, none below 4 slots, never all of them.
        assert [Admission(limit).reserve for limit in (1, 3, 4, 32, 64)] == [0, 0, 1, 2, 4]
        assert Admission(2, reserve=5).reserve == 1

    asyncio.run(scenario())


def test_reserved_skill_slots_from_env_are_split_between_workers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings().reserved_skill_slots is None  # default: computed from each worker's own slots
    monkeypatch.setenv("RESERVED_SKILL_SLOTS", "6")
    monkeypatch.setenv("MAX_CONCURRENT_SKILLS", "64")
    settings = Settings()
    assert settings.reserved_skill_slots == 6
    assert per_worker(settings, 2).reserved_skill_slots == 3
    monkeypatch.setenv("RESERVED_SKILL_SLOTS", "-1")
    with pytest.raises(ValueError):
        Settings()


def test_max_queued_per_namespace() -> None:
    async def scenario() -> None:
        admission = Admission(limit=1, queue_length=100, queue_timeout=5)
        admission.configure("small", Share(max_queued=1))
        await admission.acquire("small")
        first = asyncio.create_task(admission.acquire("small"))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            admission.check("small")
        admission.release("small")
        await first
        admission.release("small")

    asyncio.run(scenario())


def _append(path: str, writer: int, count: int) -> None:
    log = AuditLog(Path(path), max_bytes=20_000, backups=50)
    for i in range(count):
        log.write({"writer": writer, "i": i, "padding": "x" * (200 + 37 * writer)})
    log.close()


def test_records_from_two_processes_never_interleave_across_rotation(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append, args=(str(path), w, 400)) for w in (1, 2)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
        assert process.exitcode == 0
    trail = files(path)
    assert len(trail) > 2  # rotated several times
    seen: dict[int, list[int]] = {1: [], 2: []}
    for file in trail:
        for line in file.read_text().splitlines():
            record = json.loads(line)  # a split or interleaved record would not parse
            assert record["padding"] == "x" * (200 + 37 * record["writer"])
            seen[record["writer"]].append(record["i"])
    assert seen == {1: list(range(400)), 2: list(range(400))}


def test_caps_are_split_between_workers_but_connections_are_per_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The kernel hands a burst of connections to whichever worker accepts first: a divided connection
    cap refused connections while the host held fewer than MAX_CONNECTIONS."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAX_CONCURRENT_SKILLS", "64")
    monkeypatch.setenv("MAX_CONNECTIONS", "1024")
    settings = per_worker(Settings(), 2)
    assert (settings.max_concurrent_skills, settings.max_connections) == (32, 1024)
