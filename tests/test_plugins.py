"""The plugin manager: hookspecs, built-in plugins, entry points."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from convergent import hookspecs
from convergent.hookspecs import hookimpl
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


def _hook_names(prefix: str) -> list[str]:
    return sorted(name for name in dir(hookspecs) if name.startswith(prefix)
                  and hasattr(getattr(hookspecs, name), "convergent_spec"))


def test_every_built_in_yields_to_plugins_by_its_marker() -> None:
    # Built-ins register first, and pluggy calls the last-registered first: a built-in
    # without the marker would be called last and overwrite (collecting hooks) or be
    # shadowed the wrong way. Each built-in carries the marker that makes a plugin win.
    pm = load_plugins()
    builtins = {pm.get_plugin(name) for name in DEFAULT_PLUGINS}
    checked = 0
    for name in dir(hookspecs):
        spec = getattr(getattr(hookspecs, name), "convergent_spec", None)
        if spec is None:
            continue
        for impl in getattr(pm.hook, name).get_hookimpls():
            if impl.plugin not in builtins:
                continue
            checked += 1
            if spec.get("firstresult"):
                assert impl.trylast, f"{impl.plugin_name}.{name} must be trylast"
            else:
                assert impl.tryfirst, f"{impl.plugin_name}.{name} must be tryfirst"
    assert checked >= 4


class SameNames:
    """A user plugin registering the very names the built-ins register."""

    @hookimpl
    def register_verifiers(self, register: Any) -> None:
        register("execution", _user_verifier)

    @hookimpl
    def register_benchmarks(self, register: Any) -> None:
        register("humaneval", _user_items)

    @hookimpl
    def register_external_data(self, register: Any) -> None:
        register("stdlib", _user_items)

    @hookimpl
    def register_holdouts(self, register: Any) -> None:
        register("default-like", _user_items)

    @hookimpl
    def register_samplers(self, register: Any) -> None:
        register("user", _user_sampler)

    @hookimpl
    def register_commands(self, cli: Any) -> None:
        cli.add_command(click.Command("status", callback=lambda: click.echo("user status")))

    @hookimpl
    def convergent_emit(self, draft: Any, repo: str) -> dict[str, Any]:
        return {"emitted_by": "user", "repo": repo}


def _user_verifier(record: Any, ctx: Any) -> Any:
    raise AssertionError("never called here")


def _user_items() -> list[Any]:
    return []


def _user_sampler(prompt: str, n: int) -> list[str]:
    return [prompt] * n


@pytest.fixture
def same_names() -> Iterator[SameNames]:
    pm = load_plugins()
    plugin = SameNames()
    pm.register(plugin, "test-same-names")
    yield plugin
    pm.unregister(plugin)


@pytest.mark.usefixtures("same_names")
def test_a_user_verifier_replaces_the_built_in_one() -> None:
    from convergent.verifiers import registered_verifiers

    assert registered_verifiers()["execution"] is _user_verifier


@pytest.mark.usefixtures("same_names")
def test_a_user_benchmark_replaces_the_built_in_humaneval() -> None:
    from convergent.decontamination import registered_benchmarks

    assert registered_benchmarks()["humaneval"].load is _user_items


@pytest.mark.usefixtures("same_names")
def test_user_external_data_replaces_the_built_in_stdlib() -> None:
    from convergent.trainer.dataset import registered_external_data

    assert registered_external_data()["stdlib"] is _user_items


@pytest.mark.usefixtures("same_names")
def test_a_user_holdout_and_sampler_are_registered_as_given() -> None:
    # No built-in registers hold-outs or samplers (the shipped "default" hold-out is a
    # file, not a registration): what a plugin registers is what is found.
    from convergent.config import default_config
    from convergent.holdout import registered_holdouts
    from convergent.members import registered_members

    assert registered_holdouts()["default-like"] is _user_items
    # A sampler is a member of its name (convergent.members.sampler_member).
    member = registered_members(default_config())["user"]
    assert member(["p", "q"], 2, 0.5, 0) == [["p", "p"], ["q", "q"]]


@pytest.mark.usefixtures("same_names")
def test_a_user_command_replaces_a_built_in_one() -> None:
    from click.testing import CliRunner

    from convergent.cli import cli

    group = copy.copy(cli)
    group.commands = dict(cli.commands)
    load_plugins().hook.register_commands(cli=group)
    assert CliRunner().invoke(group, ["status"]).output == "user status\n"
    assert cli.commands["status"] is not group.commands["status"]


@pytest.mark.usefixtures("same_names")
def test_a_user_emit_answers_before_the_built_in_one(tmp_path: Path) -> None:
    result = load_plugins().hook.convergent_emit(draft={}, repo=str(tmp_path))
    assert result == {"emitted_by": "user", "repo": str(tmp_path)}
