"""The weekly feedback chart, drawn with matplotlib off the event loop."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ChartLabels:
    title: str
    nps: str
    rating: str
    no_data: str


def new_figure(width: float, height: float) -> tuple[Any, Any]:
    """A matplotlib figure and its axes, drawn without a screen."""
    import matplotlib

    matplotlib.use("Agg")  # no screen; must precede pyplot
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110)
    return figure, figure.subplots()


def png(figure: Any, axis: Any, no_data: str | None = None) -> bytes:
    """The figure as a PNG; `no_data` written across an empty chart."""
    from matplotlib import pyplot

    if no_data is not None:
        axis.text(0.5, 0.5, no_data, transform=axis.transAxes, ha="center", va="center", color="#666666")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close("all")
    return buffer.getvalue()


def weekly_chart(weeks: list[str], nps: list[int | None], ratings: list[float | None], labels: ChartLabels) -> bytes:
    """A PNG: weekly NPS (left axis, −100…100) and average rating (right axis, 1…5). A week
    without answers leaves a gap rather than a misleading zero."""
    figure, axis = new_figure(8, 4.5)
    positions = list(range(len(weeks)))
    nps_values = [float("nan") if value is None else value for value in nps]
    rating_values = [float("nan") if value is None else value for value in ratings]
    axis.plot(positions, nps_values, marker="o", color="#1f77b4", label=labels.nps)
    axis.set_ylim(-100, 100)
    axis.axhline(0, color="#999999", linewidth=0.8)
    axis.set_ylabel(labels.nps, color="#1f77b4")
    axis.set_xticks(positions, weeks, rotation=30, ha="right")
    second = axis.twinx()
    second.plot(positions, rating_values, marker="s", color="#ff7f0e", label=labels.rating)
    second.set_ylim(1, 5)
    second.set_ylabel(labels.rating, color="#ff7f0e")
    axis.set_title(labels.title)
    empty = all(value is None for value in nps) and all(value is None for value in ratings)
    return png(figure, axis, labels.no_data if empty else None)
