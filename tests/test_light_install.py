"""The plugin stays light: no torch for hosts or pre-commit's hook environment."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "peft", "trl", "unsloth", "datasets", "langchain_core")


def test_core_dependencies_pull_no_training_stack() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [dep.split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower()
             for dep in project["dependencies"]]
    assert not set(names) & {"torch", "transformers", "peft", "trl", "unsloth", "datasets"}
    assert {"pluggy", "gitpython", "click", "sqlite-utils"} <= set(names)


def test_plugin_cli_gates_and_trainer_modules_import_without_the_training_stack() -> None:
    code = (
        "import sys\n"
        "import convergent, convergent.cli, convergent.recorder, convergent.gates\n"
        "import convergent.hooks.git_hook, convergent.hooks.gate_hooks, convergent.index\n"
        "import convergent.trainer.cycle, convergent.trainer.registry\n"
        "import convergent.trainer.train, convergent.trainer.dataset\n"
        "import convergent.trainer.tripwire, convergent.integrations\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_only_the_convergent_folder_is_installed_and_it_is_its_import_name() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"] == ["convergent*"]
    assert "package-dir" not in setuptools  # the folder is the import name: no mapping
    import convergent.trainer.cycle

    assert Path(convergent.trainer.cycle.__file__).resolve() == (
        ROOT / "convergent" / "trainer" / "cycle.py")
