"""The weekly feedback chart, drawn with matplotlib off the event loop."""

from __future__ import annotations

import io
from dataclasses import dataclass


@dataclass(frozen=True)
class ChartLabels:
    title: str
    nps: str
    rating: str
    no_data: str


def weekly_chart(weeks: list[str], nps: list[int | None], ratings: list[float | None], labels: ChartLabels) -> bytes:
    """A PNG: weekly NPS (left axis, −100…100) and average rating (right axis, 1…5). A week
    without answers leaves a gap rather than a misleading zero."""
    import matplotlib

    matplotlib.use("Agg")  # no screen; must precede pyplot
    from matplotlib import pyplot
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=110)
    axis = figure.subplots()
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
    if all(value is None for value in nps) and all(value is None for value in ratings):
        axis.text(0.5, 0.5, labels.no_data, transform=axis.transAxes, ha="center", va="center", color="#666666")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close("all")
    return buffer.getvalue()
