"""What the author commands share: the CSI and runtime exactly as `serve` configures them (config.toml,
.env, environment), and loading one `.wasm` file with a progress display while it compiles.

Compiled artifacts go to the same on-disk cache as `serve` (`WASMTIME_CACHE_DIR`), so a second `run` of the
same file starts in milliseconds.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from skill_engine.config import ConfigError, Settings, load_settings
from skill_engine.csi import Csi
from skill_engine.errors import ExecutionError, SkillLoadError
from skill_engine.runtime.compiler import ArtifactCache, Compiler
from skill_engine.runtime.runner import LoadedSkill, WasmRuntime
from skill_engine.telemetry import Telemetry

stderr = Console(stderr=True, highlight=False)


class CommandError(Exception):
    """A failure the command reports as one line on stderr, exiting with `status`."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as e:
        raise CommandError(str(e), 2) from None


def quiet_logging() -> None:
    """Warnings of the engine on stderr; the skill's own output (stdout/stderr of the guest) too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    skill = logging.getLogger("skill_engine.skill")
    skill.setLevel(logging.INFO)
    skill.propagate = False
    skill_handler = logging.StreamHandler(sys.stderr)
    skill_handler.setFormatter(logging.Formatter("%(message)s"))
    skill.handlers[:] = [skill_handler]
    logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class LocalEngine:
    settings: Settings
    csi: Csi
    runtime: WasmRuntime
    compiler: Compiler

    @classmethod
    def create(cls, settings: Settings) -> LocalEngine:
        from skill_engine.app import cache_directory, make_documents, make_inference, make_tools
        from skill_engine.csi.chunking import Chunking, TokenizerSource

        inference = make_inference(settings)
        tokenizers = inference if isinstance(inference, TokenizerSource) else None
        csi = Csi(
            inference=inference,
            tools=make_tools(settings),
            documents=make_documents(settings),
            chunking=Chunking(tokenizers),
        )
        runtime = WasmRuntime(
            csi,
            timeout=settings.skill_timeout,
            memory_limit=int(settings.skill_memory_limit),
            max_workers=2,
            output_limit=int(settings.skill_output_limit),
            alpha=settings.pharia_ai_feature_set.strip().lower() == "beta",
        )
        compiler = Compiler(ArtifactCache(cache_directory(settings), int(settings.wasmtime_cache_size_limit)))
        return cls(settings, csi, runtime, compiler)

    async def compile(self, path: Path, telemetry: Telemetry | None = None) -> Path:
        """The compiled artifact of `path` (cached on disk), with a spinner and elapsed time meanwhile."""
        try:
            wasm = path.read_bytes()
        except OSError as e:
            raise CommandError(f"Cannot read {path}: {e.strerror or e}") from None
        span = (telemetry or Telemetry()).span
        with (
            span("compile", {"skill": path.name, "size": len(wasm)}),
            Progress(
                SpinnerColumn(),
                TextColumn("Compiling {task.description}"),
                TimeElapsedColumn(),
                console=stderr,
                transient=True,
            ) as progress,
        ):
            progress.add_task(f"{path.name} ({len(wasm) / 1e6:.1f} MB)", total=None)
            try:
                return await self.compiler.compiled(wasm, path.stem)
            except SkillLoadError as e:
                raise CommandError(e.message) from None

    def load(self, artifact: Path) -> LoadedSkill:
        """Loads as `serve` would: world, WIT version and imports checked; raises with its error text."""
        try:
            return self.runtime.load(str(artifact))
        except ExecutionError as e:
            raise CommandError(e.message) from None
        except Exception as e:
            raise CommandError(f"Failed to pre-instantiate the component: {e}") from None

    async def aclose(self) -> None:
        self.runtime.shutdown_workers()
        await self.csi.aclose()
