"""Package attributes imported on first use (PEP 562).

The command line's `--help` and photo checks import packages whose public names live in modules
that load torch and diffusers (seconds); naming them here defers that until a name is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_attributes(package: str, namespace: dict, modules: dict[str, str]) -> tuple[Callable, Callable]:
    """(`__getattr__`, `__dir__`) for `package`, whose attribute `name` comes from module `modules[name]`."""

    def __getattr__(name: str):
        if name in modules:
            value = getattr(importlib.import_module(modules[name], package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(modules))

    return __getattr__, __dir__
