"""The house's structure: no import circles, every module imports on its own, and the
layers point one way (plugin/ never imports trainer/ at import time)."""

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


def test_the_circle_check_finds_a_circle_and_resolves_relative_imports(tmp_path: Path,
                                                                       monkeypatch) -> None:
    # Attack the check itself: circles made of absolute and relative imports.
    import import_graph

    (tmp_path / "plugin" / "sub").mkdir(parents=True)
    (tmp_path / "plugin" / "__init__.py").write_text("")
    (tmp_path / "plugin" / "a.py").write_text("from convergent.sub import b\n")
    (tmp_path / "plugin" / "sub" / "__init__.py").write_text("")
    b = tmp_path / "plugin" / "sub" / "b.py"
    b.write_text("def f():\n    from .. import c\n")
    (tmp_path / "plugin" / "c.py").write_text("import convergent.a\n")
    monkeypatch.setattr(import_graph, "ROOT", tmp_path)
    monkeypatch.setattr(import_graph, "PACKAGE_DIRS", {"convergent": "plugin"})
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


@pytest.mark.parametrize("folder", ["plugin", "hooks"])
def test_plugin_and_hooks_never_import_the_trainer_at_import_time(folder: str) -> None:
    offenders = {name: sorted(t for t in m.top_imports if t.startswith("convergent.trainer"))
                 for name, m in MODULES.items()
                 if m.path.is_relative_to(Path(__file__).resolve().parents[1] / folder)}
    assert not {k: v for k, v in offenders.items() if v}


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
