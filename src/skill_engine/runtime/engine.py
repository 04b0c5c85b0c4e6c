"""The process-wide wasmtime Engine, its epoch ticker, and the fingerprint of its settings.

The compiler subprocess builds its Engine with `make_config()` too: a precompiled artifact only loads into
an Engine with the same settings, so the settings are part of the on-disk cache key (`FINGERPRINT`).
"""

from __future__ import annotations

import hashlib
import threading
from importlib.metadata import version

import wasmtime

from skill_engine.runtime import wasmtime_fixes

TICK_SECONDS = 0.01
"""Epoch tick. A busy guest is checked for timeout and cancellation every `CHECK_TICKS` ticks."""
CHECK_TICKS = 5

WASMTIME_VERSION = version("wasmtime")
_SETTINGS = "component-model;epoch-interruption;cranelift-opt=speed"
FINGERPRINT = hashlib.sha256(f"wasmtime={WASMTIME_VERSION};{_SETTINGS}".encode()).hexdigest()[:16]


def make_config(parallel_compilation: bool = True) -> wasmtime.Config:
    config = wasmtime.Config()
    config.wasm_component_model = True
    config.epoch_interruption = True
    config.cranelift_opt_level = "speed"
    config.parallel_compilation = parallel_compilation
    return config


class WasmEngine:
    """Owns the Engine and the thread that advances its epoch."""

    def __init__(self) -> None:
        wasmtime_fixes.apply()
        self.engine = wasmtime.Engine(make_config())
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="epoch-ticker", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self.engine.increment_epoch()

    def close(self) -> None:
        self._stop.set()
        self._ticker.join(timeout=1)
