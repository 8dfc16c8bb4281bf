"""The one plugin manager: built-in plugins and the ``convergent`` entry-point group."""

from __future__ import annotations

import importlib
import threading
from typing import Any

import pluggy

from convergent import hookspecs

pm = pluggy.PluginManager("convergent")
pm.add_hookspecs(hookspecs)

# Built-in plugins, registered through the very same hooks as third-party ones.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "convergent.default_plugins.emit",
    "convergent.default_plugins.verifiers",
    "convergent.default_plugins.benchmarks",
    "convergent.default_plugins.external",
    "convergent.default_plugins.members",
    "convergent.default_plugins.organism",
)

_loaded = False
_lock = threading.Lock()


def load_plugins() -> pluggy.PluginManager:
    """Register the built-in plugins and the entry-point group, once per process."""
    global _loaded
    with _lock:
        if _loaded:
            return pm
        for name in DEFAULT_PLUGINS:
            module = importlib.import_module(name)
            pm.register(module, name)
        pm.load_setuptools_entrypoints("convergent")
        _loaded = True
    return pm


def collect(hook_name: str) -> dict[str, Any]:
    """Call a collecting hook (``register_*``): ``{name: what was registered}``.

    Every implementation is called in pluggy's order (``tryfirst`` ones first, then the
    last-registered first); a later registration of the same name replaces an earlier
    one. Built-in ``register_*`` implementations are ``tryfirst``, so a plugin's
    registration of the same name always comes later and wins; built-in ``firstresult``
    implementations are ``trylast``, so a plugin answers first. tests/test_plugins.py
    checks both for every built-in.
    """
    found: dict[str, Any] = {}

    def register(name: str, value: Any) -> None:
        found[name] = value

    getattr(load_plugins().hook, hook_name)(register=register)
    return found
