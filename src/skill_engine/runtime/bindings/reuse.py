"""Reusing one WIT line's host functions for another line.

Where two lines share an interface (0.4's `chunking`, `document-index`, `language` and `tool` are 0.3's) or
can be expressed through it (every 0.2 `csi` function is a 0.3 call with other argument shapes), the other
line's binding calls the 0.3 host functions instead of repeating their conversions and driver calls. It
gets them by running `v0_3.register` against a `Recording`, which keeps what would have been defined.
Host functions are dynamically typed in wasmtime-py: they receive and return wasm values shaped by the
guest's own WIT, so a function recorded for `@0.3.11` serves the same interface at `@0.4.0` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from wasmtime.component import Linker, LinkerInstance, ResourceType

HostFunc = Callable[..., Any]
Destructor = Callable[[Any, int], None]


@dataclass
class RecordedInstance:
    functions: dict[str, HostFunc] = field(default_factory=dict)
    resources: dict[str, tuple[ResourceType, Destructor]] = field(default_factory=dict)

    # The subset of LinkerInstance the binding modules use.
    def add_func(self, name: str, function: HostFunc) -> None:
        self.functions[name] = function

    def add_resource(self, name: str, ty: ResourceType, destructor: Destructor) -> None:
        self.resources[name] = (ty, destructor)


class Recording:
    """Stands in for a `Linker`: `instances` maps each interface name to what was defined in it."""

    def __init__(self) -> None:
        self.instances: dict[str, RecordedInstance] = {}

    @contextmanager
    def root(self) -> Iterator[Recording]:
        yield self

    @contextmanager
    def add_instance(self, name: str) -> Iterator[RecordedInstance]:
        yield self.instances.setdefault(name, RecordedInstance())

    def interface(self, name: str) -> RecordedInstance:
        """The recorded interface whose unversioned name is `name` (e.g. `pharia:skill/chunking`)."""
        for full, instance in self.instances.items():
            if full.split("@", 1)[0] == name:
                return instance
        raise KeyError(name)


def record(register: Callable[[Any, Any], None], csi: Any) -> Recording:
    recording = Recording()
    register(recording, csi)
    return recording


def replay(instance: LinkerInstance, recorded: RecordedInstance) -> None:
    """Defines everything of `recorded` in `instance` (resources first: functions may refer to them)."""
    for name, (ty, destructor) in recorded.resources.items():
        instance.add_resource(name, ty, destructor)
    for name, function in recorded.functions.items():
        instance.add_func(name, function)


def define(linker: Linker, name: str, recorded: RecordedInstance) -> None:
    with linker.root() as root, root.add_instance(name) as instance:
        replay(instance, recorded)
