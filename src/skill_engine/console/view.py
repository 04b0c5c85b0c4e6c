"""The parts of an engine the console reads (passed in by app.py, which sits above the console)."""

from __future__ import annotations

from dataclasses import dataclass

from skill_engine.config import Settings
from skill_engine.csi import Csi
from skill_engine.skills.namespaces import NamespaceWatcher
from skill_engine.skills.store import SkillStore
from skill_engine.telemetry import Telemetry


@dataclass(frozen=True)
class EngineView:
    settings: Settings
    store: SkillStore
    watcher: NamespaceWatcher
    csi: Csi
    telemetry: Telemetry
