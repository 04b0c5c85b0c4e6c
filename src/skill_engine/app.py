"""Wires configuration, drivers, runtime, skill store and HTTP routes into one ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import platformdirs
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from skill_engine.api import json_worker
from skill_engine.api.csi_http import CsiRoutes
from skill_engine.api.deployment import DeploymentRoutes
from skill_engine.api.docs import DocsRoutes
from skill_engine.api.documents import DocumentRoutes
from skill_engine.api.errors import EXCEPTION_HANDLERS
from skill_engine.api.evaluations import EvaluationRoutes
from skill_engine.api.mcp_server import McpEndpoint
from skill_engine.api.readiness import Readiness
from skill_engine.api.routes import SkillRoutes
from skill_engine.api.wit import serve_skill_wit
from skill_engine.config import Settings
from skill_engine.console.openapi import console_paths
from skill_engine.console.routes import ConsoleRoutes
from skill_engine.console.view import EngineView
from skill_engine.csi import Csi, fanout
from skill_engine.csi.chunking import Chunking, TokenizerSource
from skill_engine.csi.documents import Documents
from skill_engine.csi.documents.embedded import EmbeddedDocuments
from skill_engine.csi.documents.remote import RemoteDocuments
from skill_engine.csi.governed import GovernedDocuments, GovernedInference, Guard
from skill_engine.csi.inference import Inference, NoInference
from skill_engine.csi.inference.aleph_alpha import AlephAlphaInference
from skill_engine.csi.inference.openai import OpenAIInference
from skill_engine.csi.mcp import McpServers, McpSettings
from skill_engine.csi.tool_names import EXECUTE_PYTHON
from skill_engine.csi.tools import Tools
from skill_engine.evaluation.invoker import SkillInvoker
from skill_engine.evaluation.runner import Evaluations
from skill_engine.evaluation.storage import Storage, database_url
from skill_engine.governance import settings as governance
from skill_engine.governance.audit_log import AuditLog
from skill_engine.middleware.audit import AuditMiddleware
from skill_engine.middleware.auth import Authenticator, protect
from skill_engine.middleware.compression import MIN_COMPRESS_SIZE, ResponseCompression
from skill_engine.middleware.cors import PermissiveCors
from skill_engine.middleware.decompression import RequestDecompression
from skill_engine.middleware.telemetry import TelemetryMiddleware
from skill_engine.runtime.admission import Admission, Share
from skill_engine.runtime.budget import ByteBudget
from skill_engine.runtime.compiler import ArtifactCache, Compiler
from skill_engine.runtime.runner import RunLimits, WasmRuntime
from skill_engine.sandbox.executor import CodeSandbox, Limits
from skill_engine.sandbox.tool import execute_python
from skill_engine.skills.builtin import builtin
from skill_engine.skills.namespaces import NamespaceWatcher
from skill_engine.skills.store import SkillStore
from skill_engine.telemetry import Telemetry

log = logging.getLogger("skill_engine")


def make_inference(settings: Settings) -> Inference:
    if settings.inference_url is not None:
        return AlephAlphaInference(settings.inference_url)
    if settings.openai_inference is not None:
        openai = settings.openai_inference
        return OpenAIInference(openai.url, openai.token.get_secret_value())
    return NoInference()


def make_documents(settings: Settings) -> Documents:
    """The Document Index if configured, else the embedded index (docs/documents.md)."""
    if settings.document_index_url is not None:
        return RemoteDocuments(settings.document_index_url)
    directory = settings.documents.directory
    if directory is None:
        directory = Path(platformdirs.user_data_dir("skill-engine")) / "documents"
    return EmbeddedDocuments(directory)


def make_tools(settings: Settings, guard: Guard | None = None) -> Tools:
    return Tools(
        McpServers(
            McpSettings(
                refresh_interval=settings.mcp_refresh_interval,
                call_timeout=settings.mcp_call_timeout,
                connect_timeout=settings.mcp_connect_timeout,
            )
        ),
        guard,
    )


def make_evaluations(
    settings: Settings, invoker: SkillInvoker, csi: Csi, audit_log: AuditLog | None = None
) -> Evaluations:
    config = settings.evaluations
    directory = config.directory or Path(platformdirs.user_data_dir("skill-engine"))
    secret = config.database_url.get_secret_value() if config.database_url is not None else None
    storage = Storage(database_url(secret, directory))
    return Evaluations(storage, invoker, csi, config.max_concurrency, audit_log)


def cache_directory(settings: Settings) -> Path:
    if settings.wasmtime_cache_dir is not None:
        return settings.wasmtime_cache_dir
    return Path(platformdirs.user_cache_dir("skill-engine")) / "compiled"


class Engine:
    """Everything behind the HTTP surface, with its start-up and shutdown order."""

    def __init__(self, settings: Settings) -> None:  # long: the wiring, one collaborator after another
        self.settings = settings
        self._started = False
        self.telemetry = Telemetry.from_settings(settings)
        fanout.configure(settings.csi_batch_concurrency, settings.csi_concurrency)
        inference = make_inference(settings)
        tokenizers = inference if isinstance(inference, TokenizerSource) else None
        namespaces = settings.effective_namespaces()
        # Policies and token budgets govern every CSI call, of skills and over HTTP (docs/governance.md).
        metrics = self.telemetry.metrics
        metrics.namespaces = frozenset(namespaces)
        self.guard = Guard(
            governance.policies(settings, namespaces),
            governance.budgets(namespaces, settings.workers),
            on_denied=metrics.namespace_denial,
            on_tokens=metrics.namespace_token_usage,
        )
        self.documents = make_documents(settings)
        self.csi = Csi(
            inference=GovernedInference(inference, self.guard),
            tools=make_tools(settings, self.guard),
            documents=GovernedDocuments(self.documents, self.guard),
            chunking=Chunking(tokenizers),
        )
        self.audit_log = (
            AuditLog(settings.audit_log, int(settings.audit_log_max_bytes), settings.audit_log_backups)
            if settings.audit_log is not None
            else None
        )
        self._otlp_audit = None
        if self.audit_log is not None and settings.otel_endpoint is not None:
            from skill_engine.governance.otlp import OtlpAudit

            self._otlp_audit = OtlpAudit(settings.otel_endpoint)
            self.audit_log.also.append(self._otlp_audit)
        self.runtime = WasmRuntime(
            self.csi,
            timeout=settings.skill_timeout,
            memory_limit=int(settings.skill_memory_limit),
            max_workers=settings.max_concurrent_skills,
            admission=Admission(
                settings.max_concurrent_skills,
                settings.max_queued_skills,
                settings.skill_queue_timeout,
                settings.max_concurrent_skills_per_namespace,
                settings.reserved_skill_slots,
            ),
            output_limit=int(settings.skill_output_limit),
            alpha=settings.pharia_ai_feature_set.strip().lower() == "beta",
            max_stuck=settings.max_stuck_skills,
            input_budget=ByteBudget(int(settings.max_input_bytes_in_flight), settings.skill_queue_timeout),
        )
        for name, ns in namespaces.items():
            limits = ns.limits
            memory = int(limits.memory) if limits.memory is not None else None
            self.runtime.namespace_limits[name] = RunLimits(limits.timeout, memory, limits.cpu_time)
            self.runtime.admission.configure(
                name,
                Share(
                    limits.weight,
                    governance.split(limits.max_concurrent, settings.workers),
                    governance.split(limits.max_queued, settings.workers, least=0),
                ),
            )
        self.runtime.admission.on_change = metrics.namespace_load
        self.runtime.admission.on_reject = metrics.namespace_rejection
        self.runtime.on_cpu = metrics.namespace_cpu_seconds
        self.compiler = Compiler(
            ArtifactCache(cache_directory(settings), int(settings.wasmtime_cache_size_limit))
        )
        self.compiler.on_compiled = self.telemetry.metrics.compiled
        self.store = SkillStore(
            self.runtime,
            self.compiler,
            self.telemetry,
            cache_bytes=settings.skill_cache_bytes,
            precompile=settings.precompile_skills,
        )
        in_flight = self.runtime.in_flight
        self.telemetry.metrics.observe_gauges(
            cache_items=lambda: len(self.store.cache.paths()),
            in_flight=lambda: len(in_flight),
            stuck=lambda: self.runtime.stuck.count,
            queued=lambda: (
                self.runtime.admission.waiting
                + sum(1 for invocation in list(in_flight) if not invocation.started)
            ),
        )
        self.watcher = NamespaceWatcher(
            settings.effective_namespaces(),
            self.store,
            settings.namespace_update_interval,
            int(settings.max_skill_size),
        )
        # `execute_python` (docs/agents.md): built and loaded in the background once a namespace enables it.
        self.sandbox = CodeSandbox(
            self.runtime.engine,
            self.csi.tools,
            self.compiler,
            cache_directory(settings) / "sandbox",
            Limits(
                timeout=settings.code_execution_timeout,
                memory=int(settings.code_execution_memory),
                output=settings.code_execution_output_limit,
                concurrency=settings.code_execution_concurrency,
            ),
        )
        self.csi.tools.provide_native(execute_python(self.sandbox))
        # Native tools and MCP servers follow each namespace's description, live (docs/deployment.md).
        self.watcher.on_native_tools(self._native_tools_changed)
        namespaces = settings.effective_namespaces()
        self.watcher.on_mcp_servers(
            lambda name, urls: self.csi.tools.set_mcp_servers(name, urls, namespaces[name].mcp_forward_token)
        )
        self._watching: asyncio.Task[None] | None = None
        self._mcp_refreshing: asyncio.Task[None] | None = None
        self.authenticator = (
            Authenticator(
                settings.authorization_url, settings.authorization_cache_ttl, settings.authorization_timeout
            )
            if settings.authorization_url is not None
            else None
        )
        self._revalidating: asyncio.Task[None] | None = None
        invoker = SkillInvoker(self.store, self.runtime, self.csi, self.telemetry)
        self.evaluations = make_evaluations(settings, invoker, self.csi, self.audit_log)

    def knows_skill(self, namespace: str, name: str) -> bool:
        return builtin(namespace, name) is not None or f"{namespace}/{name}" in self.store.skill_paths()

    def _native_tools_changed(self, namespace: str, names: tuple[str, ...]) -> None:
        self.csi.tools.set_native_tools(namespace, names)
        if EXECUTE_PYTHON in names and self._started:
            self.sandbox.prepare()

    async def start(self) -> None:
        self.telemetry.metrics.serve(self.settings.metrics_address)
        await self.watcher.run_pass()  # the port opens only after the first pass
        self._started = True
        if self.csi.tools.enabled_anywhere(EXECUTE_PYTHON):
            self.sandbox.prepare()  # in the background: the first call need not wait for the build
        await self.evaluations.start()
        self._watching = asyncio.create_task(self.watcher.run_forever())
        self._revalidating = asyncio.create_task(
            self.store.revalidate_forever(self.settings.namespace_update_interval)
        )
        # Skills see MCP tools from the first request on, unless a server is slower than the connect
        # timeout: then its tools appear when its listing arrives.
        mcp = self.csi.tools.mcp
        await mcp.first_listing(wait=self.settings.mcp_connect_timeout)
        self._mcp_refreshing = asyncio.create_task(mcp.run_forever())

    async def stop(self) -> None:
        await self.evaluations.stop()
        self.runtime.stop_all("The engine is shutting down.")
        json_worker.shutdown()
        for task in (self._watching, self._mcp_refreshing, self._revalidating):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.watcher.aclose()
        await self.sandbox.close()
        await self.csi.aclose()
        self.telemetry.shutdown()
        if self._otlp_audit is not None:
            self._otlp_audit.shutdown()
        if self.audit_log is not None:
            self.audit_log.close()
        if self.authenticator is not None:
            await self.authenticator.aclose()


def create_app(settings: Settings) -> Starlette:  # long: the route table and middleware stack, as data
    engine = Engine(settings)
    routes = SkillRoutes(engine.store, engine.runtime, engine.csi, engine.telemetry)
    routes.beta = settings.pharia_ai_feature_set.strip().upper() == "BETA"
    deployment = DeploymentRoutes(engine.store, engine.watcher)
    embedded = engine.documents if isinstance(engine.documents, EmbeddedDocuments) else None
    admin_token = settings.documents.admin_token
    documents = DocumentRoutes(embedded, admin_token.get_secret_value() if admin_token else None)
    docs = DocsRoutes(settings.pharia_ai_feature_set, console_paths())
    console = ConsoleRoutes(EngineView(settings, engine.store, engine.watcher, engine.csi, engine.telemetry))
    evaluations = EvaluationRoutes(
        engine.evaluations,
        engine.knows_skill,
        int(settings.evaluations.max_dataset_bytes),
        settings.evaluations.max_examples,
    )
    mcp_endpoint = McpEndpoint(engine.store, engine.runtime, engine.csi, engine.telemetry)
    readiness = Readiness()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await engine.start()
        # What start-up built lives as long as the process: keep it out of every later full collection
        # (with 1,000 invocations in flight the collector's walks were ~9% of the engine's CPU).
        gc.freeze()
        try:
            async with mcp_endpoint.running():
                yield
        finally:
            await engine.stop()

    app = Starlette(
        routes=protect(
            [
                Route("/", docs.landing, methods=["GET"]),
                Route("/openapi.json", docs.openapi_json, methods=["GET"]),
                Route("/api-docs", docs.api_docs, methods=["GET"]),
                Route("/health", routes.health, methods=["GET"]),
                Route("/ready", readiness.ready, methods=["GET"]),
                Route("/skill.wit", serve_skill_wit, methods=["GET"]),
                Route("/v1/skills", routes.list_skills, methods=["GET"]),
                Route("/v1/skills/{namespace}/{name}/run", routes.run, methods=["POST"]),
                Route("/v1/skills/{namespace}/{name}/metadata", routes.metadata, methods=["GET"]),
                Route(
                    "/v1/skills/{namespace}/{name}/message-stream", routes.message_stream, methods=["POST"]
                ),
                Route("/v1/tools/{namespace}", routes.list_tools, methods=["GET"]),
                *documents.routes(),
                *evaluations.routes(),
                *CsiRoutes(engine.csi).routes(),
                Route("/v1/mcp_servers/{namespace}", deployment.mcp_servers, methods=["GET"]),
                *mcp_endpoint.routes(),
                Route("/cached_skills", deployment.cached_skills, methods=["GET"]),
                Route("/cached_skills/{namespace}/{name}", deployment.drop_cached_skill, methods=["DELETE"]),
                *console.routes(),
            ],
            engine.authenticator,
        ),
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            Middleware(TelemetryMiddleware, telemetry=engine.telemetry),
            Middleware(AuditMiddleware, log=engine.audit_log),
            Middleware(PermissiveCors),
            Middleware(ResponseCompression, minimum_size=MIN_COMPRESS_SIZE),
            # Decodes lazily, when the route reads: route-level authentication runs first (docs/security.md).
            Middleware(RequestDecompression),
        ],
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.readiness = readiness  # shutdown.py marks it draining
    return app
