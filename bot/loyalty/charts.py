"""The monthly cohort retention chart, drawn with matplotlib off the event loop."""

from __future__ import annotations

import io
from dataclasses import dataclass


@dataclass(frozen=True)
class CohortLabels:
    title: str
    joined: str  # the y axis: the month members joined
    since: str  # the x axis: months since joining
    no_data: str


def cohort_chart(cohorts: list[tuple[str, int, list[int]]], labels: CohortLabels) -> bytes:
    """A PNG heat map: a row per join month, a column per month since joining, each cell the share
    of that month's new members who bought in it (blank where the month has not come yet)."""
    import matplotlib

    matplotlib.use("Agg")  # no screen; must precede pyplot
    from matplotlib import pyplot
    from matplotlib.figure import Figure

    width = max((len(active) for _, _, active in cohorts), default=1)
    grid = [
        [active[k] * 100 / size if size and k < len(active) else float("nan") for k in range(width)]
        for _, size, active in cohorts
    ]
    figure = Figure(figsize=(9, 5), dpi=110)
    axis = figure.subplots()
    image = axis.imshow(grid, cmap="Blues", vmin=0, vmax=100, aspect="auto")
    for row, (_, size, active) in enumerate(cohorts):
        for k, count in enumerate(active):
            if size:
                share = round(count * 100 / size)
                axis.text(k, row, f"{share}", ha="center", va="center", color="white" if share > 60 else "black")
    axis.set_yticks(range(len(cohorts)), [f"{month} ({size})" for month, size, _ in cohorts])
    axis.set_xticks(range(width), [str(k) for k in range(width)])
    axis.set_xlabel(labels.since)
    axis.set_ylabel(labels.joined)
    axis.set_title(labels.title)
    figure.colorbar(image, ax=axis, format="%d%%")
    if not any(size for _, size, _ in cohorts):
        axis.text(0.5, 0.5, labels.no_data, transform=axis.transAxes, ha="center", va="center", color="#666666")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close("all")
    return buffer.getvalue()
