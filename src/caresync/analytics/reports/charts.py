"""The reports' charts as inline SVG (matplotlib, Agg backend, imported on first use: it is slow to import).

Each function draws one figure and returns its ``<svg>`` element, ready to place in the report's HTML: no
file, no network. Text stays text (``svg.fonttype`` ``none``), so the PDF's charts are searchable and their
titles are found by ``pdftotext``; ``svg.hashsalt`` makes the same data give the same SVG.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH, HEIGHT = 7.0, 2.8  # inches: the width of an A4 page between its margins
# Room around the axes, in inches: tick labels and the y label on the left, dates below, the title above.
MARGINS = {"left": 0.7, "right": 0.3, "bottom": 0.35, "top": 0.3}  # right: half a date label
LEGEND_WIDTH = 2.3  # inches right of the axes for a legend of condition names (40 characters at most)
IDS = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')  # an id, and the two ways matplotlib refers to one
BLUE, ORANGE = "#206bc4", "#f76707"


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _style() -> AbstractContextManager[None]:
    """Text as text, stable ids, the report's font."""
    import matplotlib

    matplotlib.use("Agg")
    return matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": "caresync", "font.size": 8.0, "font.family": "DejaVu Sans"}
    )


def _figure(title: str, height: float = HEIGHT, legend_width: float = 0.0) -> tuple[Figure, Axes]:
    """A figure with fixed margins (in inches; ``legend_width`` more on the right for a legend beside the
    axes): matplotlib's constrained layout would find the same ones, at twice the cost of the drawing."""
    from matplotlib.figure import Figure  # the object API: no pyplot, no global state between threads

    figure = Figure(figsize=(WIDTH, height))
    figure.subplots_adjust(
        left=MARGINS["left"] / WIDTH,
        right=1 - (MARGINS["right"] + legend_width) / WIDTH,
        bottom=MARGINS["bottom"] / height,
        top=1 - MARGINS["top"] / height,
    )
    axes = figure.add_subplot()
    axes.set_title(title, loc="left", fontsize=9.5, fontweight="bold")
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", color="#e9ecef", linewidth=0.6)
    return figure, axes


def _svg(figure: Figure, name: str) -> str:
    """The figure as an ``<svg>`` element whose ids start with ``name``: matplotlib numbers them the same
    way in every figure, and ids must be unique in the report's one document."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # drop the XML declaration and doctype: the SVG goes inline
    return IDS.sub(lambda m: f"{m.group(1)}{name}-{m.group(2)}", text)


def _days(days: Sequence[date]) -> Any:
    import numpy as np

    return np.array(days, dtype="datetime64[D]")


def volume_chart(
    title: str, history: Sequence[tuple[date, float]], forecast: Sequence[Mapping[str, Any]]
) -> str:
    """Weekly volumes (line), then the forecast (dashed) with its 80 % and 95 % prediction intervals
    (shaded); ``forecast`` rows have ``period`` (ISO date), ``sarima``, ``lower_80`` ... ``upper_95``."""
    with _style():
        figure, axes = _figure(title)
        if history:
            axes.plot(
                _days([d for d, _ in history]),
                [v for _, v in history],
                color=BLUE,
                linewidth=1.2,
                label="actual",
            )
        if forecast:
            days = _days([date.fromisoformat(str(p["period"])) for p in forecast])
            for level, alpha in ((95, 0.15), (80, 0.3)):
                lower = [p[f"lower_{level}"] for p in forecast]
                upper = [p[f"upper_{level}"] for p in forecast]
                axes.fill_between(
                    days, lower, upper, color=ORANGE, alpha=alpha, linewidth=0, label=f"{level} %"
                )
            axes.plot(days, [p["sarima"] for p in forecast], color=ORANGE, linestyle="--", label="forecast")
        axes.set_ylabel("Encounters per week")
        axes.set_ylim(bottom=0)
        axes.legend(loc="upper left", frameon=False, ncols=4)
        return _svg(figure, _slug(title))


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], *, ylabel: str) -> str:
    """One bar per label."""
    with _style():
        figure, axes = _figure(title, height=2.2)
        axes.bar(list(labels), list(values), color=BLUE, width=0.6)
        axes.set_ylabel(ylabel)
        return _svg(figure, _slug(title))


def lines_chart(
    title: str, x_labels: Sequence[str], lines: Mapping[str, Sequence[float]], *, ylabel: str
) -> str:
    """One line per name over shared categories (e.g. conditions' profile over the months), without markers
    (each would be one more SVG element for WeasyPrint to draw)."""
    with _style():
        figure, axes = _figure(title, legend_width=LEGEND_WIDTH if lines else 0.0)
        positions = list(range(len(x_labels)))  # labels may repeat (J, F, M, A, M, J...)
        axes.set_xticks(positions, list(x_labels))
        for name, values in lines.items():
            axes.plot(positions, list(values), linewidth=1.2, label=name)  # no markers: each is an element
        axes.set_ylabel(ylabel)
        if lines:
            axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=7)
        return _svg(figure, _slug(title))
