"""A tiny terminal for tests: applies the output of a live display to a screen of ``columns`` columns
(printable characters with auto-wrap, ``\\r``, ``\\n`` as CR LF, cursor up ``ESC[nA``, erase below
``ESC[J``, erase line ``ESC[2K``; cursor show/hide ignored), so a test can check what a user is left
looking at: no stale line, no duplicate, nothing wrapped."""
from __future__ import annotations

import re
from typing import List

_TOKEN = re.compile(r"\x1b\[(\??)(\d*)([A-Za-z])|\r|\n|[^\x1b\r\n]")
_ERASE = re.compile(r"\r(?:\x1b\[\d+A)?\x1b\[J")


class Screen:
    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.rows: List[List[str]] = [[]]
        self.row = 0
        self.col = 0
        #: How many times a line ran past the last column and wrapped.
        self.wrapped = 0

    def _line(self) -> List[str]:
        while len(self.rows) <= self.row:
            self.rows.append([])
        return self.rows[self.row]

    def feed(self, text: str) -> None:
        for m in _TOKEN.finditer(text):
            token = m.group(0)
            if token == "\r":
                self.col = 0
            elif token == "\n":
                self.row += 1
                self.col = 0
                self._line()
            elif m.group(3):
                private, number, command = m.group(1), m.group(2), m.group(3)
                n = int(number or "1")
                if private:
                    continue  # cursor show/hide
                if command == "A":
                    self.row = max(0, self.row - n)
                elif command == "J":
                    line = self._line()
                    del line[self.col:]
                    del self.rows[self.row + 1:]
                elif command == "K" and number == "2":
                    self._line().clear()
                else:
                    raise AssertionError(f"unexpected escape sequence {token!r}")
            else:
                if self.col >= self.columns:
                    self.wrapped += 1
                    self.row += 1
                    self.col = 0
                line = self._line()
                while len(line) < self.col:
                    line.append(" ")
                if self.col < len(line):
                    line[self.col] = token
                else:
                    line.append(token)
                self.col += 1

    def lines(self) -> List[str]:
        """The screen's lines, trailing spaces and trailing empty lines removed."""
        out = ["".join(r).rstrip() for r in self.rows]
        while out and not out[-1]:
            out.pop()
        return out

    def feed_frames(self, text: str, block: int = 2) -> List[List[str]]:
        """Feeds ``text`` and returns each redraw of a ``block``-line live display (the lines written
        after each erase), for checks per frame."""
        self.feed(text)
        chunks = _ERASE.split(text)[1:]
        return [chunk.split("\n")[:block] for chunk in chunks]
