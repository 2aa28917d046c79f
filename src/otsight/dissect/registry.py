"""Find the dissectors: built-in modules of ``otsight.dissect`` and entry-point plugins.

A module contributes a dissector by defining ``DISSECTOR`` (a :class:`Dissector` subclass).
Plugins register under the entry-point group ``otsight.dissectors``. Two dissectors with
the same name, or two claiming the same table, fail loudly; a plugin that fails to import is
reported and skipped, never fatal.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from otsight.dissect.base import Dissector

ENTRY_POINT_GROUP = "otsight.dissectors"


@dataclass
class Registry:
    dissectors: dict[str, type[Dissector]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, cls: type[Dissector], source: str) -> None:
        if cls.name in self.dissectors:
            raise RuntimeError(
                f"two dissectors named {cls.name!r}: {self.sources[cls.name]} and {source}"
            )
        for table in cls.tables:
            for other, ocls in self.dissectors.items():
                if table in ocls.tables:
                    raise RuntimeError(f"table {table!r} claimed by {other!r} and {cls.name!r}")
        self.dissectors[cls.name] = cls
        self.sources[cls.name] = source

    def tables(self) -> dict[str, object]:
        return {t: s for cls in self.dissectors.values() for t, s in cls.tables.items()}


_REGISTRY: Registry | None = None


def registry() -> Registry:
    global _REGISTRY
    if _REGISTRY is not None:
        return _REGISTRY
    reg = Registry()
    import otsight.dissect as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in {"base", "registry", "matching", "routing"}:
            continue
        module = importlib.import_module(f"otsight.dissect.{info.name}")
        cls = getattr(module, "DISSECTOR", None)
        if cls is not None:
            reg.add(cls, module.__name__)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
            reg.add(cls, f"plugin {ep.value}")
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the sensor
            reg.problems.append(f"plugin {ep.name} ({ep.value}) could not be loaded: {exc}")
    _REGISTRY = reg
    return reg
