"""Instances made ahead of their invocation, so instantiation is off the request's path.

Instantiating a componentize-py skill costs ~2.5 ms of CPU (wasmtime initialises the instance's function
references and maps its memory image), a third of a trivial `/run`. After an invocation of a skill ends,
a background thread makes that skill's next Store and instance; the next invocation takes it instead of
instantiating while its caller waits.

Isolation between requests is unchanged: a spare is a fresh instance that no guest code has run in yet,
it serves exactly one invocation and is closed with it, never returned. At most `MAX_SPARES` skills (the
most recently run) hold one spare each, ~2 MiB PSS / ~10 MiB RSS apiece (bench/RESULTS.md). A spare that
cannot be made (e.g. the memory limit is below the component's initial memory) is simply not there: the
invocation instantiates itself and fails with the real error.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import wasmtime
from wasmtime.component import Component, Linker

from skill_engine.runtime import wasmtime_fixes
from skill_engine.runtime.engine import CHECK_TICKS

if TYPE_CHECKING:
    from skill_engine.runtime.invocation import Invocation

MAX_SPARES = 8
_UNOWNED_CHECKS = 100
"""Epoch checks (5 s) an instantiation may take before it has an invocation (start functions only)."""


class Prepared:
    """A Store with a fresh instance of one component; guest output and epoch checks go to the
    invocation it is given to (`attach`)."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        linker: Linker,
        component: Component,
        memory: int,
        invocation: Invocation | None = None,
    ) -> None:
        self.invocation = invocation
        self._early: list[tuple[str, bytes]] = []
        self._checks = 0
        store = wasmtime.Store(engine)
        wasi = wasmtime.WasiConfig()  # no preopens, no env, no args, no network
        wasi.stdout_custom = lambda data: self._capture("stdout", data)
        wasi.stderr_custom = lambda data: self._capture("stderr", data)
        store.set_wasi(wasi)
        store.set_limits(memory_size=memory)
        self.keepalive = wasmtime_fixes.set_epoch_deadline_callback(store, self._epoch_check, CHECK_TICKS)
        store.set_epoch_deadline(CHECK_TICKS)
        self.store = store
        try:
            self.instance = linker.instantiate(store, component)
        except BaseException:
            store.close()
            raise

    def attach(self, invocation: Invocation) -> None:
        self.invocation = invocation
        for stream, data in self._early:
            invocation.capture(stream, data)
        self._early.clear()
        self.store.set_epoch_deadline(CHECK_TICKS)  # counted from now, not from when it was made

    def close(self) -> None:
        self.store.close()

    def _capture(self, stream: str, data: bytes) -> None:
        if self.invocation is None:
            self._early.append((stream, data))
        else:
            self.invocation.capture(stream, data)

    def _epoch_check(self) -> str | None:
        if self.invocation is not None:
            return self.invocation.epoch_check()
        self._checks += 1
        return "instantiation took too long" if self._checks > _UNOWNED_CHECKS else None


_WAIT = 10.0
"""Seconds an invocation waits for a spare that is still being made (bounded by `_UNOWNED_CHECKS`)."""

_Entry = tuple[Component, int, "Future[Prepared]"]


class Spares:
    """At most one spare instance per recently run skill, made on a thread of its own."""

    def __init__(self, engine: wasmtime.Engine, linker: Linker, limit: int = MAX_SPARES) -> None:
        self.engine = engine
        self.linker = linker
        self.limit = limit
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._maker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spare-instance")

    def take(self, component: Component, memory: int, invocation: Invocation) -> Prepared:
        """The component's spare if it has one for this memory limit, else a fresh instance made now;
        either way given to `invocation`."""
        if self.limit:
            with self._lock:
                entry = self._entries.pop(id(component), None)
            if entry is not None:
                if entry[0] is component and entry[1] == memory:
                    try:
                        prepared = entry[2].result(timeout=_WAIT)  # waits if it is still being made
                    except Exception:
                        pass  # instantiate below, where the error belongs to the invocation
                    else:
                        prepared.attach(invocation)
                        return prepared
                else:
                    _discard(entry)
        return Prepared(self.engine, self.linker, component, memory, invocation)

    def refill(self, component: Component, memory: int) -> None:
        """After an invocation: makes the component's next spare in the background unless it has one."""
        if not self.limit:
            return
        future: Future[Prepared] = Future()
        evicted: list[_Entry] = []
        with self._lock:
            key = id(component)
            if key in self._entries:
                self._entries.move_to_end(key)
                return
            self._entries[key] = (component, memory, future)
            while len(self._entries) > self.limit:
                evicted.append(self._entries.popitem(last=False)[1])
        for entry in evicted:
            _discard(entry)
        try:
            self._maker.submit(self._make, key, component, memory, future)
        except RuntimeError:  # shutting down
            with self._lock:
                self._entries.pop(key, None)

    def _make(self, key: int, component: Component, memory: int, future: Future[Prepared]) -> None:
        try:
            future.set_result(Prepared(self.engine, self.linker, component, memory))
        except BaseException as e:
            future.set_exception(e)
            with self._lock:
                current = self._entries.get(key)
                if current is not None and current[2] is future:
                    del self._entries[key]

    def close(self) -> None:
        """Shutdown: no more spares; the ones made are closed."""
        self.limit = 0
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            _discard(entry)
        self._maker.shutdown(wait=False, cancel_futures=True)


def _discard(entry: _Entry) -> None:
    def close(future: Future[Prepared]) -> None:
        if not future.cancelled() and future.exception() is None:
            future.result().close()

    entry[2].add_done_callback(close)
