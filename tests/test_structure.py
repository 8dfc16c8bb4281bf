"""The house's structure: no import circles, every module imports on its own, and the
layers point one way (the core never imports convergent/trainer/ at import time)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from import_graph import import_cycles, load_modules

MODULES = load_modules()


def test_the_graph_sees_our_modules_and_their_edges() -> None:
    # The reader must find edges, or "no circle" would be vacuous.
    assert {"convergent.cli", "convergent.hooks.runner", "convergent.trainer.cycle"} <= set(
        MODULES)
    assert "convergent.cli_support" in MODULES["convergent.cli"].top_imports
    assert "convergent.gates" in MODULES["convergent.hooks.runner"].top_imports


def test_there_is_no_import_circle_among_our_modules() -> None:
    cycles = import_cycles(MODULES)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_there_is_no_import_circle_even_through_imports_inside_functions() -> None:
    # A circle closed inside a function does not break an import, but it is still two
    # modules that need each other: one of them holds a rule that belongs lower down.
    cycles = import_cycles(MODULES, functions=True)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_circle_check_finds_a_circle_and_resolves_relative_imports(tmp_path: Path,
                                                                       monkeypatch) -> None:
    # Attack the check itself: circles made of absolute and relative imports.
    import import_graph

    (tmp_path / "convergent" / "sub").mkdir(parents=True)
    (tmp_path / "convergent" / "__init__.py").write_text("")
    (tmp_path / "convergent" / "a.py").write_text("from convergent.sub import b\n")
    (tmp_path / "convergent" / "sub" / "__init__.py").write_text("")
    b = tmp_path / "convergent" / "sub" / "b.py"
    b.write_text("def f():\n    from .. import c\n")
    (tmp_path / "convergent" / "c.py").write_text("import convergent.a\n")
    monkeypatch.setattr(import_graph, "ROOT", tmp_path)
    modules = import_graph.load_modules()
    assert modules["convergent.sub.b"].function_imports == {"convergent.c"}
    assert modules["convergent.a"].top_imports == {"convergent.sub.b"}
    # Only module-level imports make a circle that breaks an import ...
    assert import_graph.import_cycles(modules) == []
    # ... the one closed inside a function is seen when asked.
    assert import_graph.import_cycles(modules, functions=True) == [
        ["convergent.a", "convergent.sub.b", "convergent.c", "convergent.a"]]
    b.write_text("from ..a import x\n")
    modules = import_graph.load_modules()
    assert modules["convergent.sub.b"].top_imports == {"convergent.a"}
    assert import_graph.import_cycles(modules) == [
        ["convergent.a", "convergent.sub.b", "convergent.a"]]


# Where the core reaches the trainer at all: inside the functions that start training work
# (the cycle commands, the demo, the post-merge cycle start) or load its data and
# embedder on first use. Anything else importing convergent.trainer fails the test below.
TRAINER_CALLERS = {
    "convergent.cli_cycle", "convergent.demo", "convergent.on_merge",
    "convergent.default_plugins.external", "convergent.decontamination_semantic.embedding",
}


@pytest.mark.parametrize("folder", ["convergent", "convergent/hooks"])
def test_the_core_and_hooks_never_import_the_trainer_at_import_time(folder: str) -> None:
    root = Path(__file__).resolve().parents[1] / folder
    trainer = Path(__file__).resolve().parents[1] / "convergent" / "trainer"
    ours = {name: m for name, m in MODULES.items()
            if m.path.is_relative_to(root) and not m.path.is_relative_to(trainer)}
    assert ours
    at_import = {name: sorted(t for t in m.top_imports if t.startswith("convergent.trainer"))
                 for name, m in ours.items()}
    assert not {k: v for k, v in at_import.items() if v}
    anywhere = {name for name, m in ours.items()
                if any(t.startswith("convergent.trainer") for t in m.function_imports)}
    assert anywhere <= TRAINER_CALLERS, sorted(anywhere - TRAINER_CALLERS)


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    # One interpreter per module: an import that only works after another module was
    # imported first (import-order dependence) fails here.
    script = textwrap.dedent("""
        import subprocess, sys
        failed = []
        for name in sys.argv[1:]:
            done = subprocess.run([sys.executable, "-c", f"import {name}"],
                                  capture_output=True, text=True)
            if done.returncode:
                failed.append(f"{name}: {done.stderr.strip().splitlines()[-1]}")
        print("\\n".join(failed))
        raise SystemExit(1 if failed else 0)
    """)
    names = sorted(n for n in MODULES if n != "convergent.__main__")
    done = subprocess.run([sys.executable, "-c", script, *names], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_console_script_and_pre_commit_hook_id_reaches_its_gate(capsys) -> None:
    import importlib
    import tomllib

    import yaml

    from convergent.gates import GATES
    from convergent.hooks.gate_hooks import ENTRY_POINTS

    root = Path(__file__).resolve().parents[1]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    hooks = yaml.safe_load((root / ".pre-commit-hooks.yaml").read_text())
    assert set(ENTRY_POINTS) == {"all", *GATES}
    assert {hook["id"] for hook in hooks} == {f"convergent-{name}" for name in ENTRY_POINTS}
    for hook in hooks:
        name = hook["id"].removeprefix("convergent-")
        target = scripts[hook["entry"]]  # every hook's entry is a console script
        assert hook["entry"] == f"convergent-gate-{name}"
        module, _, attr = target.partition(":")
        main = getattr(importlib.import_module(module), attr)
        assert main is ENTRY_POINTS[name]
        with pytest.raises(SystemExit) as done:
            main(["--help"])
        assert done.value.code == 0
        described = capsys.readouterr().out.split("convergent gates:", 1)[1]
        assert described.split()[0].rstrip(",") == (name if name != "all" else "schema")


def test_the_hooks_module_runs_a_named_gate_and_refuses_an_unknown_one(
        records_repo: Path, capsys) -> None:
    from convergent.hooks.gate_hooks import main

    assert main(["schema", "--repo", str(records_repo)]) == 0
    assert main(["no-such-gate"]) == 2
    assert "usage: python -m convergent.hooks.gate_hooks" in capsys.readouterr().err
