"""The monthly cohort retention chart, drawn with matplotlib off the event loop (the figure and
its PNG as the feedback chart makes them, `bot.surveys.charts`)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.surveys.charts import new_figure, png


@dataclass(frozen=True)
class CohortLabels:
    title: str
    joined: str  # the y axis: the month members joined
    since: str  # the x axis: months since joining
    no_data: str


def cohort_chart(cohorts: list[tuple[str, int, list[int]]], labels: CohortLabels) -> bytes:
    """A PNG heat map: a row per join month, a column per month since joining, each cell the share
    of that month's new members who bought in it (blank where the month has not come yet)."""
    width = max((len(active) for _, _, active in cohorts), default=1)
    grid = [
        [active[k] * 100 / size if size and k < len(active) else float("nan") for k in range(width)]
        for _, size, active in cohorts
    ]
    figure, axis = new_figure(9, 5)
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
    return png(figure, axis, None if any(size for _, size, _ in cohorts) else labels.no_data)
