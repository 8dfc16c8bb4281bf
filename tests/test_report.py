"""The tripwire report: a real PNG and an HTML page that embeds it."""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from convergent.errors import ConvergentError
from convergent.trainer.report import write_report

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

HISTORY: list[dict[str, Any]] = [
    {
        "cycle": 1,
        "pass_rate": 0.50,
        "diversity": 0.61,
        "outcome": "promoted",
        "adapter": "sha256:" + "a" * 64,
        "ts": "2026-11-27T20:00:00Z",
    },
    {
        "cycle": 2,
        "pass_rate": 0.56,
        "diversity": 0.60,
        "outcome": "promoted",
        "adapter": "sha256:" + "b" * 64,
        "ts": "2026-11-27T20:30:00Z",
    },
    {
        "cycle": 3,
        "pass_rate": 0.20,
        "diversity": 0.05,
        "outcome": "halted",
        "adapter": None,
        "ts": "2026-11-27T21:00:00Z",
    },
]


def test_png_is_a_valid_image(tmp_path: Path) -> None:
    import matplotlib.image

    png, _ = write_report(HISTORY, tmp_path / "out")
    assert png == tmp_path / "out" / "tripwire.png"
    assert png.read_bytes().startswith(PNG_MAGIC)
    pixels = matplotlib.image.imread(png)
    # 8 x 6 inches at 100 dpi, RGBA.
    assert pixels.shape == (600, 800, 4)


def test_html_embeds_the_png_and_tabulates_each_cycle(tmp_path: Path) -> None:
    png, page = write_report(HISTORY, tmp_path)
    text = page.read_text(encoding="utf-8")
    embedded = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert embedded is not None
    assert base64.b64decode(embedded.group(1)) == png.read_bytes()
    body = text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr[ >]", body)
    assert len(rows) == 3
    assert body.count('class="halted"') == 1
    assert "0.5600" in body and "sha256:" + "b" * 64 in body


def test_empty_history_still_writes_a_report(tmp_path: Path) -> None:
    png, page = write_report([], tmp_path)
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert "<tbody>\n\n</tbody>" in page.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"cycle": 1, "pass_rate": 0.5, "outcome": "promoted"}, "diversity"),
        ({"cycle": 1, "pass_rate": 0.5, "diversity": 0.5, "outcome": "maybe"}, "outcome"),
    ],
)
def test_malformed_cycles_are_refused(tmp_path: Path, bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ConvergentError, match=message):
        write_report([bad], tmp_path)


def test_missing_matplotlib_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules makes that import raise ImportError.
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ConvergentError, match=r"convergent\[report\]"):
        write_report(HISTORY, tmp_path)
