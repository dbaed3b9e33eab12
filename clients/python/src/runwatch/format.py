"""Text formatting for people: durations, rates, percents, bars, and lines that fit a terminal.

The Python twin of the Node CLI's ``src/cli/format.ts`` (same functions, same output), so the Python
and Node watchers print the same lines. Pure functions; no I/O.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

__all__ = ["format_duration", "format_rate", "format_rate_number", "format_percent", "format_count", "text_bar",
           "clip", "Cell", "layout_line", "one_line", "wrap_words"]


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
        want: the width it grows to before any cell grows past its own ``want`` (default ``min``): the
            width that shows it whole.
    """
    priority: float
    min: int
    max: int
    render: Callable[[int], str]
    want: Optional[int] = None


def layout_line(cells: Sequence[Cell], width: int) -> str:
    """Lays cells out on one line of at most ``width`` characters, one space apart: drops the
    lowest-priority cells until the rest fit at their ``min`` widths, then shares what is left one
    character at a time, highest priority first, first up to each cell's ``want`` (so a name is shown
    whole before a bar grows longer), then up to its ``max``. Cells keep their order.
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
    for limit in (lambda c: min(c.max, max(c.min, c.want if c.want is not None else c.min)), lambda c: c.max):
        while spare > 0:
            grew = False
            for i in order:
                if spare > 0 and widths[i] < limit(kept[i]):
                    widths[i] += 1
                    spare -= 1
                    grew = True
            if not grew:
                break
    return " ".join(c.render(w) for c, w in zip(kept, widths)).rstrip()


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """Text that came from users (job names, stages, messages) made safe for one terminal line: line
    breaks and tabs become the visible escapes ``\\n``, ``\\r``, ``\\t``, other control characters
    (which could move the cursor or recolour the terminal) ``\\xNN``. (``oneLine`` of the Node CLI.)"""
    return _CONTROL.sub(lambda m: _ESCAPES.get(m.group(0), f"\\x{ord(m.group(0)):02x}"), text)


def wrap_words(text: str, width: int, indent: str = "") -> List[str]:
    """``text`` as lines of at most ``width`` characters, broken only between words (never inside one);
    continuation lines start with ``indent``; the text's own spacing (two spaces between fields) is kept
    within a line; only a single word wider than a line is cut, with ``…``. (``wrapWords`` of the Node
    CLI.)"""
    if len(text) <= width:
        return [text]
    lines: List[str] = []
    line = ""
    fresh = True  # nothing on the line yet but the indent
    for m in re.finditer(r"( *)([^ ]+)", text):
        gap, word = m.group(1), m.group(2)
        if not fresh and len(line) + len(gap) + len(word) > width:
            lines.append(line)
            line = indent
            fresh = True
        sep = "" if fresh and lines else gap  # the text's own indent stays on its first line
        room = width - len(line) - len(sep)
        line += sep + (word if len(word) <= room else clip(word, max(1, room)))
        fresh = False
    if not fresh:
        lines.append(line)
    return lines
