"""How every benchmark prints its figures: one aligned table, labels left, numbers right."""

from __future__ import annotations

from collections.abc import Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(str(cell).rjust(width) if i else str(cell).ljust(width)
                      for i, (cell, width) in enumerate(zip(row, widths)))
            for row in [header, *rows]]
