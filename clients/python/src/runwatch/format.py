"""Text formatting for people: durations, rates, percents, bars, and lines that fit a terminal.

The Python twin of the Node CLI's ``src/cli/format.ts`` (same functions, same output), so the Python
and Node watchers print the same lines. Pure functions; no I/O.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

__all__ = ["format_duration", "format_rate", "format_rate_number", "format_percent", "format_count", "text_bar",
           "clip", "Cell", "layout_line", "wrap_parts"]


def _finite(value: Optional[float]) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def _js_round(value: float) -> int:
    """JavaScript's ``Math.round`` (halves round up), so durations match the Node CLI's."""
    return int(math.floor(value + 0.5))


def format_duration(seconds: Optional[float]) -> str:
    """Seconds as ``45s``, ``3m 05s``, ``2h 07m``; ``-`` when None, negative or not finite."""
    if not _finite(seconds) or seconds < 0:  # type: ignore[operator]
        return "-"
    s = _js_round(float(seconds))  # type: ignore[arg-type]
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def format_rate_number(rate: Optional[float]) -> str:
    """Items per second as a number: 3 significant digits (``9.9``, ``12.3``), whole from 100, ``12.3k``
    from 10 000; ``-`` when unknown."""
    if not _finite(rate):
        return "-"
    r = float(rate)  # type: ignore[arg-type]
    if r >= 10_000:
        return f"{r / 1000:.1f}k"
    if r >= 100:
        return str(_js_round(r))
    if r == 0:
        return "0"
    digits = max(0, 2 - int(math.floor(math.log10(abs(r)))))
    text = f"{r:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_rate(rate: Optional[float]) -> str:
    """Items per second as ``12.3/s`` (``12.3k/s`` from 10 000); ``-`` when unknown."""
    number = format_rate_number(rate)
    return "-" if number == "-" else f"{number}/s"


def format_percent(percent: Optional[float]) -> str:
    """Percent (0..100) rounded down, as ``42%``; ``-`` when unknown."""
    if not _finite(percent):
        return "-"
    return f"{int(math.floor(percent))}%"  # type: ignore[arg-type]


def format_count(completed: int, total: Optional[int]) -> str:
    """``completed/total`` (``completed/?`` while the total is unknown)."""
    return f"{completed}/{'?' if total is None else total}"


def text_bar(fraction: Optional[float], width: int = 24) -> str:
    """A text bar of ``width`` cells for ``fraction`` (0..1); an empty (indeterminate) bar when None."""
    if fraction is None:
        return "░" * width
    full = max(0, min(width, _js_round(fraction * width)))
    return "█" * full + "░" * (width - full)


def clip(text: str, width: int) -> str:
    """Cuts ``text`` to ``width`` characters, ending in ``…`` when cut."""
    if len(text) <= width:
        return text
    return text[:max(0, width)] if width <= 1 else text[:width - 1] + "…"


@dataclass
class Cell:
    """One cell of a line laid out by :func:`layout_line`.

    Attributes:
        priority: the lowest-priority cells are dropped first when the line does not fit; ``math.inf``:
            never dropped.
        min: narrowest useful width (characters). max: widest it grows to when there is room.
        render: the cell's text at a given width (it may pad or cut).
    """
    priority: float
    min: int
    max: int
    render: Callable[[int], str]


def layout_line(cells: Sequence[Cell], width: int, fill_in_order: bool = False) -> str:
    """Lays cells out on one line of at most ``width`` characters, one space apart: drops the
    lowest-priority cells until the rest fit at their ``min`` widths, then shares what is left one
    character at a time, highest priority first, up to each cell's ``max`` (with ``fill_in_order``:
    the highest-priority cell grows to its ``max`` before the next one grows). Cells keep their order.
    (``layoutLine`` of the Node CLI, without colour.)"""
    kept: List[Cell] = list(cells)

    def used() -> int:
        return sum(c.min for c in kept) + max(0, len(kept) - 1)

    while used() > width:
        victim = -1
        for i, c in enumerate(kept):
            if c.priority != math.inf and (victim < 0 or c.priority <= kept[victim].priority):
                victim = i
        if victim < 0:
            break
        del kept[victim]
    widths = [c.min for c in kept]
    spare = width - used()
    order = sorted(range(len(kept)), key=lambda i: -kept[i].priority)
    if fill_in_order:
        for i in order:
            grow = max(0, min(spare, kept[i].max - widths[i]))
            widths[i] += grow
            spare -= grow
    while spare > 0:
        grew = False
        for i in order:
            if spare > 0 and widths[i] < kept[i].max:
                widths[i] += 1
                spare -= 1
                grew = True
        if not grew:
            break
    return " ".join(c.render(w) for c, w in zip(kept, widths)).rstrip()


def wrap_parts(parts: Sequence[str], width: int, sep: str = "  ", indent: str = "    ") -> List[str]:
    """Joins ``parts`` with ``sep`` into lines of at most ``width`` characters, breaking between parts;
    continuation lines start with ``indent``. A part too long for a line of its own is broken between
    its words; only a single word wider than a line is cut (with ``…``). Never breaks inside a word."""
    room = max(1, width - len(indent))
    lines: List[str] = []
    line = ""

    def add(text: str, joiner: str) -> None:
        nonlocal line
        if not line:
            line = clip(text, width)
        elif len(line) + len(joiner) + len(text) <= width:
            line = f"{line}{joiner}{text}"
        else:
            lines.append(line)
            line = indent + clip(text, room)

    for part in parts:
        if len(part) <= room or (not line and len(part) <= width) or (line and len(line) + len(sep) + len(part) <= width):
            add(part, sep)
            continue
        for i, word in enumerate(part.split()):  # a long part: word by word
            add(word, sep if i == 0 else " ")
    if line:
        lines.append(line)
    return lines
