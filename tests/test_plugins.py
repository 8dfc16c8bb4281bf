"""The plugin manager: hookspecs, built-in plugins, entry points."""

from __future__ import annotations

from convergent import hookspecs
from convergent.plugins import DEFAULT_PLUGINS, load_plugins


def test_every_registered_hookimpl_matches_a_spec() -> None:
    pm = load_plugins()
    pm.check_pending()
    for name in DEFAULT_PLUGINS:
        assert pm.get_plugin(name) is not None


def test_specs_are_documented() -> None:
    for name in dir(hookspecs):
        func = getattr(hookspecs, name)
        if callable(func) and hasattr(func, "convergent_spec"):
            assert func.__doc__ and func.__doc__.strip(), name
            assert func.__annotations__, name


def test_load_plugins_is_idempotent() -> None:
    pm = load_plugins()
    before = len(pm.get_plugins())
    assert load_plugins() is pm
    assert len(pm.get_plugins()) == before
