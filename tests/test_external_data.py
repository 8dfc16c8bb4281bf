"""The default external training data drawn from the stdlib sources."""

from __future__ import annotations

import ast
import hashlib
import platform
import re
from pathlib import Path

import pytest

from convergent.trainer.external_data import (
    DEFAULT_LIMIT,
    ExternalItem,
    iter_stdlib_functions,
    load_stdlib_functions,
    stdlib_info,
)

ID_PATTERN = re.compile(r"^stdlib:[A-Za-z0-9_.]+:[A-Za-z0-9_]+:[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def items() -> list[ExternalItem]:
    return load_stdlib_functions()


def test_default_load_is_non_empty_and_limited(items: list[ExternalItem]) -> None:
    assert len(items) == DEFAULT_LIMIT


def test_load_is_deterministic(items: list[ExternalItem]) -> None:
    assert load_stdlib_functions() == items
    assert load_stdlib_functions(limit=7) == items[:7]


def test_items_are_external_and_ids_unique(items: list[ExternalItem]) -> None:
    assert {item["origin"] for item in items} == {"external"}
    assert len({item["id"] for item in items}) == len(items)
    for item in items:
        assert ID_PATTERN.match(item["id"]), item["id"]
        digest = hashlib.sha256((item["prompt"] + item["completion"]).encode()).hexdigest()
        assert item["id"].endswith(digest[:12])


def test_prompt_and_completion_parse(items: list[ExternalItem]) -> None:
    for item in items:
        whole = ast.parse(item["prompt"] + item["completion"])
        assert len(whole.body) == 1, item["id"]
        # The prompt alone is the signature with its docstring as the whole body.
        function = ast.parse(item["prompt"]).body[0]
        assert isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef), item["id"]
        assert ast.get_docstring(function), item["id"]
        assert item["id"].split(":")[2] == function.name


def test_bodies_are_short(items: list[ExternalItem]) -> None:
    for item in load_stdlib_functions(limit=50, max_body_lines=5):
        assert sum(1 for line in item["completion"].splitlines() if line.strip()) <= 5


def test_limit_none_loads_more_and_negative_limit_is_refused() -> None:
    assert len(load_stdlib_functions(limit=None)) > DEFAULT_LIMIT
    with pytest.raises(ValueError, match="limit"):
        load_stdlib_functions(limit=-1)


def test_stdlib_info_names_the_version() -> None:
    assert stdlib_info()["version"] == platform.python_version()
    assert stdlib_info()["source"] == "python-stdlib"


SAMPLE_MODULE = '''\
import functools


def taken(a, b=1):
    """Add two numbers."""
    # a comment that belongs to the body
    return a + b


def no_docstring(x):
    return x


def _private(x):
    """Private helpers are skipped."""
    return x


def docstring_only():
    """Nothing after the docstring."""


def same_line(): "Docstring on the def line."; return 1


def too_long(x):
    """Body over the limit."""
    x += 1
    x += 1
    x += 1
    return x


@functools.cache
async def decorated(x):
    """Decorators stay in the prompt."""
    return x


class Skipped:
    def method(self):
        """Only top-level functions are taken."""
        return self
'''


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_selection_rules_on_a_sample_tree(tmp_path: Path) -> None:
    _write(tmp_path, "pkg/__init__.py", SAMPLE_MODULE)
    _write(tmp_path, "test/test_x.py", SAMPLE_MODULE)
    _write(tmp_path, "_private_mod.py", SAMPLE_MODULE)
    _write(tmp_path, "broken.py", "def (:\n")
    found = list(iter_stdlib_functions(max_body_lines=3, root=tmp_path))
    assert [item["id"].rsplit(":", 1)[0] for item in found] == [
        "stdlib:pkg:taken",
        "stdlib:pkg:decorated",
    ]
    taken, decorated = found
    assert taken["prompt"] == 'def taken(a, b=1):\n    """Add two numbers."""\n'
    assert taken["completion"] == "    # a comment that belongs to the body\n    return a + b\n"
    assert decorated["prompt"].startswith("@functools.cache\nasync def decorated(x):")
