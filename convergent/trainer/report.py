"""The tripwire report: pass rate and diversity per cycle, promotions and halts.

``convergent report`` calls :func:`write_report` with the cycle history read
from the log; it writes ``tripwire.png`` and ``tripwire.html`` (the page embeds
the PNG as a data URI, so it is one self-contained file to attach or archive).
matplotlib is the optional ``report`` extra and is imported only here.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convergent.errors import ConvergentError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

PNG_NAME = "tripwire.png"
HTML_NAME = "tripwire.html"
OUTCOMES = ("promoted", "halted")
REQUIRED_FIELDS = ("cycle", "pass_rate", "diversity", "outcome")

# One look for each outcome, shared by both panels and the legend.
OUTCOME_STYLE: dict[str, dict[str, Any]] = {
    "promoted": {"marker": "o", "color": "tab:green", "label": "promoted"},
    "halted": {"marker": "X", "color": "tab:red", "label": "halted"},
}


def _check_history(history: Sequence[dict[str, Any]]) -> None:
    for index, cycle in enumerate(history):
        for field in REQUIRED_FIELDS:
            if field not in cycle:
                raise ConvergentError(f"history[{index}]: missing field {field!r}")
        if cycle["outcome"] not in OUTCOMES:
            raise ConvergentError(
                f"history[{index}]: outcome must be one of {OUTCOMES}, got {cycle['outcome']!r}"
            )


def _plot_metric(axes: Axes, history: Sequence[dict[str, Any]], field: str, title: str) -> None:
    cycles = [c["cycle"] for c in history]
    values = [c[field] for c in history]
    axes.plot(cycles, values, color="tab:gray", linewidth=1, zorder=1)
    # Both metrics are fractions; a zero-based axis keeps a small dip looking small.
    axes.set_ylim(0.0, max([1.0, *values]) * 1.05)
    for outcome, style in OUTCOME_STYLE.items():
        points = [c for c in history if c["outcome"] == outcome]
        # An empty scatter still gives the legend its entry, so both marks are always explained.
        axes.scatter(
            [c["cycle"] for c in points], [c[field] for c in points], s=60, zorder=2, **style
        )
    axes.set_ylabel(title)
    axes.grid(True, alpha=0.3)


def _render_png(history: Sequence[dict[str, Any]], path: Path) -> None:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as error:
        raise ConvergentError(
            "the tripwire report needs matplotlib: pip install 'convergent[report]'"
        ) from error
    # A bare Figure on the Agg canvas draws without a display and without pyplot's
    # global state, so it neither switches a host's backend nor leaks figures.
    figure = Figure(figsize=(8, 6), dpi=100)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    _plot_metric(top, history, "pass_rate", "verified pass rate")
    _plot_metric(bottom, history, "diversity", "diversity")
    bottom.set_xlabel("cycle")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    if history:  # whole cycles only, with room either side of the first and last
        cycles = [int(c["cycle"]) for c in history]
        bottom.set_xlim(min(cycles) - 0.5, max(cycles) + 0.5)
        if len(cycles) <= 20:
            bottom.set_xticks(cycles)
    top.set_title("convergent tripwire")
    top.legend(loc="best")
    if not history:
        top.text(0.5, 0.5, "no cycles yet", ha="center", va="center", transform=top.transAxes)
        bottom.set_xticks([])
    figure.tight_layout()
    figure.savefig(path, format="png")


def _format_number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


def _table_rows(history: Sequence[dict[str, Any]]) -> str:
    rows = []
    for cycle in history:
        cells = [
            _format_number(cycle["cycle"]),
            html.escape(str(cycle["outcome"])),
            _format_number(cycle["pass_rate"]),
            _format_number(cycle["diversity"]),
            html.escape(str(cycle.get("adapter") or "")),
            html.escape(str(cycle.get("ts") or "")),
        ]
        rows.append(
            f'<tr class="{cycle["outcome"]}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        )
    return "\n".join(rows)


def _render_html(history: Sequence[dict[str, Any]], png: bytes) -> str:
    image = base64.b64encode(png).decode("ascii")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>convergent tripwire</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: left; }}
tr.halted {{ background: #fde8e8; }}
</style>
</head>
<body>
<h1>convergent tripwire</h1>
<p>Verified pass rate on the frozen hold-out and diversity of the samples, per cycle.</p>
<img src="data:image/png;base64,{image}" alt="pass rate and diversity per cycle">
<table>
<thead><tr><th>cycle</th><th>outcome</th><th>pass rate</th><th>diversity</th>\
<th>adapter</th><th>time</th></tr></thead>
<tbody>
{_table_rows(history)}
</tbody>
</table>
</body>
</html>
"""


def write_report(history: list[dict[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    """Write ``tripwire.png`` and ``tripwire.html`` into ``out_dir``; return (png, html).

    ``history`` holds one dict per cycle, oldest first: ``cycle``, ``pass_rate``,
    ``diversity``, ``outcome`` ("promoted" or "halted"), and optionally
    ``adapter`` and ``ts``. Raises ConvergentError on a malformed cycle or when
    matplotlib is not installed.
    """
    _check_history(history)
    ordered = sorted(history, key=lambda c: c["cycle"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png_path = out_dir / PNG_NAME
    html_path = out_dir / HTML_NAME
    _render_png(ordered, png_path)
    html_path.write_text(_render_html(ordered, png_path.read_bytes()), encoding="utf-8")
    return png_path, html_path
