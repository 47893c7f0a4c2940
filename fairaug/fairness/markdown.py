"""Markdown tables for the reports."""

from __future__ import annotations


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(row) for row in rows)]
