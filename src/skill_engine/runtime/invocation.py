"""One skill invocation as seen from the worker thread that runs it.

The guest runs on a worker thread; CSI drivers live on the asyncio loop. `Invocation.call` hands a driver
coroutine to the loop and waits for it with the invocation's remaining time, so a host call can never
outlive the deadline. `stop()` (timeout, client gone, shutdown) cancels pending host calls at once and
makes the epoch callback trap a busy guest at its next check.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from skill_engine.csi.calls import CsiContext
from skill_engine.csi.errors import CsiError
from skill_engine.runtime.handoff import settle
from skill_engine.runtime.stream_output import CLOSED, FULL, StreamOutput
from skill_engine.telemetry.tracing import current_trace_id

T = TypeVar("T")

log = logging.getLogger("skill_engine.skill")

TIMEOUT_MESSAGE = "Maximum skill execution time reached."
MEMORY_MESSAGE = "Maximum skill memory reached."
CPU_MESSAGE = "Maximum skill CPU time reached."
CANCELLED_MESSAGE = "The invocation was cancelled."
HOST_COPY_LIMIT = 128 * 1024 * 1024 // 48
"""Values wasmtime lifts from a guest in one call: its hostcall fuel (128 MiB, not configurable through
the C API) at 48 bytes per value. A skill's output is a `list<u8>`, so at most 2 796 202 bytes."""
HOST_COPY_MESSAGE = (
    f"The skill handed the engine more data in one call than wasmtime-py can take: at most "
    f"{HOST_COPY_LIMIT} values per call, which limits a skill's output to {HOST_COPY_LIMIT} bytes."
)


class InvocationStopped(Exception):
    """Raised inside a host call when the invocation was stopped from outside."""


class Invocation:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        ctx: CsiContext,
        timeout: float,
        log_limit: int = 64 * 1024,
        csi_allowed: bool = True,
        cpu_limit: float | None = None,
        memory_limit: int | None = None,
    ) -> None:
        self.loop = loop
        self.memory_limit = memory_limit
        """Linear memory the guest may use; None: the runtime's global limit."""
        self.cpu_limit = cpu_limit
        """CPU seconds the guest's thread may use (`cpu-time`); waiting on host calls uses none."""
        self._cpu_start: float | None = None
        self.csi_allowed = csi_allowed
        self.ctx = ctx
        self.started = False
        """Set when a worker thread picks the invocation up (until then it waits in the queue)."""
        # Guest output is captured on wasmtime's I/O threads, outside the request's context.
        self._log_fields = {"namespace": ctx.namespace, "skill": ctx.skill, "trace_id": current_trace_id()}
        self.deadline = time.monotonic() + timeout
        self.stop_reason: str | None = None
        self.stopped: asyncio.Future[None] = loop.create_future()
        """Done on the loop once stop() was called (a future, not an Event: awaiting it needs no task)."""
        self.csi_error: CsiError | None = None
        self.failed_function: str | None = None
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()
        self._log_limit = log_limit
        self._log_bytes = 0
        self._log_truncated = False
        self._log_buffers: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        # Host resources (e.g. upstream streams) opened by the guest, closed when the invocation ends.
        self.resources: dict[int, Any] = {}
        # Where a message-stream skill's items go (`None` for function skills: tool events are dropped).
        self.stream: StreamOutput | None = None
        self._next_rep = 1

    # -- called from the guest thread -----------------------------------------------------------------

    def start_cpu_clock(self) -> None:
        """Called on the guest's thread before it enters wasm: CPU time is that thread's."""
        self._cpu_start = time.thread_time()

    def cpu_used(self) -> float:
        """CPU seconds of the guest's thread so far; only meaningful on that thread."""
        return 0.0 if self._cpu_start is None else time.thread_time() - self._cpu_start

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def call(self, function: str, coro: Coroutine[Any, Any, T]) -> T:
        """Runs a driver coroutine on the loop and waits for its result on this (guest) thread."""
        if self.stop_reason is not None:
            coro.close()
            raise InvocationStopped(self.stop_reason)
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        with self._lock:
            self._pending.add(future)
        try:
            return future.result(timeout=max(self.remaining(), 0.0))
        except concurrent.futures.TimeoutError:
            self.stop(TIMEOUT_MESSAGE)
            raise InvocationStopped(TIMEOUT_MESSAGE) from None
        except concurrent.futures.CancelledError:
            raise InvocationStopped(self.stop_reason or CANCELLED_MESSAGE) from None
        except CsiError as e:
            self.csi_error = e
            self.failed_function = function
            raise
        except Exception as e:
            # A driver bug must still end only this invocation, with a message naming the function.
            self.csi_error = CsiError(f"{function} failed: {type(e).__name__}: {e}")
            self.failed_function = function
            raise self.csi_error from e
        finally:
            with self._lock:
                self._pending.discard(future)

    def fail(self, function: str, error: CsiError) -> CsiError:
        """Records a CSI failure raised in the binding itself (e.g. a function not provided yet)."""
        self.csi_error = error
        self.failed_function = function
        return error

    def add_resource(self, obj: Any) -> int:
        rep = self._next_rep
        self._next_rep += 1
        self.resources[rep] = obj
        return rep

    def emit(self, item: Any) -> None:
        """Hands a stream item to the response, waiting while the client is slower than the skill.

        Runs on the guest's thread without a loop round trip (runtime/stream_output.py); a wait for room
        ends like a host call's: at the deadline, or at once when the invocation is stopped.
        """
        if self.stream is None:
            return
        if self.stop_reason is not None:
            raise InvocationStopped(self.stop_reason)
        outcome = self.stream.write(item, self.deadline, self._is_stopped)
        if outcome == FULL:
            self.stop(TIMEOUT_MESSAGE)
            raise InvocationStopped(TIMEOUT_MESSAGE)
        if outcome == CLOSED:
            raise InvocationStopped(self.stop_reason or CANCELLED_MESSAGE)

    def _is_stopped(self) -> bool:
        return self.stop_reason is not None

    def close_resources(self) -> None:
        """Closes what the guest left open; resource destructors do not run when a guest traps."""
        resources, self.resources = self.resources, {}
        for resource in resources.values():
            close = getattr(resource, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("closing a host resource failed")

    def epoch_check(self) -> str | None:
        """Called by wasmtime at epoch deadlines: None lets a busy guest continue, a message traps it."""
        if self.stop_reason is None:
            if time.monotonic() >= self.deadline:
                self.stop_reason = TIMEOUT_MESSAGE
            # wasmtime runs this callback on the thread executing the guest, so thread_time is its CPU.
            elif self.cpu_limit is not None and self.cpu_used() >= self.cpu_limit:
                self.stop_reason = CPU_MESSAGE
        return self.stop_reason

    # -- called from any thread ----------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Stops the invocation: pending host calls are cancelled, a busy guest traps at its next check."""
        if self.stop_reason is None:
            self.stop_reason = reason
        if not self.stopped.done() and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(settle, self.stopped)
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.cancel()
        if self.stream is not None:
            self.stream.interrupt()

    # -- guest output --------------------------------------------------------------------------------

    def capture(self, stream: str, data: bytes) -> None:
        """Collects guest stdout/stderr; runs on wasmtime's I/O threads, so it only appends."""
        with self._lock:
            room = self._log_limit - self._log_bytes
            if room <= 0:
                self._log_truncated = True
                return
            chunk = data[:room]
            self._log_bytes += len(chunk)
            self._log_truncated |= len(chunk) < len(data)
            buffer = self._log_buffers[stream]
            buffer += chunk
            *lines, rest = buffer.split(b"\n")
            for line in lines:
                log.info(
                    "skill %s: %s",
                    stream,
                    line.decode("utf-8", "replace"),
                    extra={**self._log_fields, "stream": stream},
                )
            self._log_buffers[stream] = bytearray(rest)

    def flush_logs(self) -> None:
        for stream, buffer in self._log_buffers.items():
            if buffer:
                text = buffer.decode("utf-8", "replace")
                log.info("skill %s: %s", stream, text, extra={**self._log_fields, "stream": stream})
                buffer.clear()
        if self._log_truncated:
            log.warning("skill output truncated after %d bytes", self._log_limit, extra=self._log_fields)
