"""Markdown tables for the reports."""

from __future__ import annotations

import math


def format_value(value, digits: int = 3) -> str:
    """A table cell: '–' for a missing or undefined value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_mean_std(mean, std, digits: int = 3) -> str:
    cell = format_value(mean, digits)
    return cell if cell == "–" or format_value(std) == "–" else f"{cell} ± {format_value(std, digits)}"


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(row) for row in rows)]
