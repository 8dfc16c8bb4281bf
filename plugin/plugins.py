"""The one plugin manager: built-in plugins and the ``convergent`` entry-point group."""

from __future__ import annotations

import importlib
import threading

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
