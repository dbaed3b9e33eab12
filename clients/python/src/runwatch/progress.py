"""What ``python -m runwatch run`` reads in a command's output: the Python twin of
``src/cli/progress-parser.ts``. Pure: no I/O, no clock.

Recognised on one line (ANSI escapes removed first), in this order:

1. JSON objects with numeric ``completed`` and/or ``total`` (also ``percent``, ``stage``, ``message``);
2. tqdm bars ``desc:  45%|████▌     | 45/100 [00:01<00:01, 44.2it/s]`` (unit-scaled counts such as
   ``1.2k/10k``) and tqdm without a total ``desc: 123it [00:01, 99.1it/s]``;
3. counters ``N/M`` or ``N of M`` (N ≤ M); 4. percentages ``45%`` (0..100).

Training metrics ride along: Hugging Face–style log lines (Python dict or JSON) ``{'loss': 0.31,
'learning_rate': 4.8e-05, 'epoch': 0.12}`` give ``training`` (``epoch`` floored, ``step``/``global_step``
→ ``globalStep``); ``{'eval_loss': …, 'eval_accuracy': …}`` gives ``validation``; and ``loss=0.12`` /
``lr=1e-4`` anywhere else on a line (a tqdm postfix) give ``training``. Results are dicts with the same
camelCase keys as the TypeScript parser; both are checked against test/fixtures/progress-samples.json.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Dict, List, Optional

__all__ = ["strip_ansi", "parse_progress_line", "ProgressTracker", "LineSplitter"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")
_SCALE = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_TQDM = re.compile(r"^\s*(?:(?P<desc>.*?):\s*)?(?P<pct>\d{1,3})%\s*\|.*?\|\s*(?P<n>\d+(?:\.\d+)?[kKMGT]?)\s*/\s*"
                   r"(?P<total>\d+(?:\.\d+)?[kKMGT]?)(?:\s*[a-zA-Z]+)?\s*\[")
_TQDM_NO_TOTAL = re.compile(r"^\s*(?:(?P<desc>.*?):\s*)?(?P<n>\d+(?:\.\d+)?[kKMGT]?)(?:[a-zA-Z]+|\s[a-zA-Z]+)\s*"
                            r"\[\d+:\d{2}(?::\d{2})?,")
_COUNTER = re.compile(r"(?<![\w./:-])(\d+)\s*(?:/|\bof\b)\s*(\d+)(?![\w./:-])")
_PERCENT = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d+)?)\s?%")
_NUM = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_DICT_PAIR = re.compile(r"['\"]([A-Za-z_][\w./-]*)['\"]\s*:\s*(" + _NUM + r")(?=\s*[,}])")
_LOSS = re.compile(r"(?<![\w.])loss\s*[=:]\s*(" + _NUM + ")")
_LR = re.compile(r"(?<![\w.])(?:lr|learning_rate)\s*[=:]\s*(" + _NUM + ")")
_EVAL_NOT_METRICS = {"eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second"}


def strip_ansi(text: str) -> str:
    """Removes ANSI escape sequences (colours, cursor moves)."""
    return _ANSI.sub("", text)


def _scaled(text: str) -> Optional[int]:
    m = re.match(r"^(\d+(?:\.\d+)?)([kKMGT]?)$", text.strip())
    if not m:
        return None
    return int(_round_half_up(float(m.group(1)) * _SCALE[m.group(2)]))


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))  # like JavaScript's Math.round


def _number(value: str) -> Optional[float]:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _js_number(value: float) -> Any:
    """1.0 → 1 (so results compare like the JavaScript ones)."""
    return int(value) if float(value).is_integer() and abs(value) < 2 ** 53 else value


def _dict_metrics(line: str) -> Dict[str, Any]:
    values: Dict[str, float] = {}
    for m in _DICT_PAIR.finditer(line):
        number = _number(m.group(2))
        if number is not None:
            values[m.group(1)] = number
    out: Dict[str, Any] = {}
    epoch = values.get("epoch")
    whole_epoch = int(math.floor(epoch)) if epoch is not None and epoch >= 0 else None
    loss = values.get("loss")
    lr = values.get("learning_rate", values.get("lr"))
    if loss is not None or lr is not None:
        training: Dict[str, Any] = {}
        if loss is not None:
            training["loss"] = _js_number(loss)
        if lr is not None:
            training["learningRate"] = _js_number(lr)
        if whole_epoch is not None:
            training["epoch"] = whole_epoch
        step = values.get("global_step", values.get("step"))
        if step is not None and float(step).is_integer() and step >= 0:
            training["globalStep"] = int(step)
        out["training"] = training
    eval_loss = values.get("eval_loss")
    if eval_loss is not None:
        validation: Dict[str, Any] = {"validationLoss": _js_number(eval_loss)}
        if whole_epoch is not None:
            validation["epoch"] = whole_epoch
        metrics = {k[5:]: _js_number(v) for k, v in values.items() if k.startswith("eval_") and k not in _EVAL_NOT_METRICS}
        if metrics:
            validation["metrics"] = metrics
        out["validation"] = validation
    return out


def _inline_training(line: str) -> Optional[Dict[str, Any]]:
    loss = _LOSS.search(line)
    lr = _LR.search(line)
    training: Dict[str, Any] = {}
    if loss and _number(loss.group(1)) is not None:
        training["loss"] = _js_number(float(loss.group(1)))
    if lr and _number(lr.group(1)) is not None:
        training["learningRate"] = _js_number(float(lr.group(1)))
    return training or None


def parse_progress_line(raw: str) -> Optional[Dict[str, Any]]:
    """Parses one line. Returns a dict with any of ``completed``, ``total`` (items), ``percent`` (0..100),
    ``stage``, ``message``, ``training`` (``loss``, ``learningRate``, ``epoch``, ``globalStep``) and
    ``validation`` (``validationLoss``, ``epoch``, ``metrics``); None when the line says nothing."""
    line = strip_ansi(raw).strip()
    if not line:
        return None
    if line.startswith("{") and line.endswith("}"):
        metrics = _dict_metrics(line)
        counts = _parse_counts(line)
        if not metrics:
            return counts
        out = dict(counts or {})
        out.update(metrics)
        return out
    counts = _parse_counts(line)
    training = _inline_training(line)
    if training is None:
        return counts
    out = dict(counts or {})
    out["training"] = training
    return out


def _parse_counts(line: str) -> Optional[Dict[str, Any]]:
    if line.startswith("{") and line.endswith("}"):
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            out: Dict[str, Any] = {}

            def num(v: Any) -> Optional[int]:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                    return None
                return int(math.floor(v))

            completed, total = num(obj.get("completed")), num(obj.get("total"))
            if completed is not None:
                out["completed"] = completed
            if total is not None:
                out["total"] = total
            pct = obj.get("percent")
            if isinstance(pct, (int, float)) and not isinstance(pct, bool) and 0 <= pct <= 100:
                out["percent"] = pct
            if isinstance(obj.get("stage"), str) and obj["stage"]:
                out["stage"] = obj["stage"]
            if isinstance(obj.get("message"), str) and obj["message"]:
                out["message"] = obj["message"]
            if "completed" in out or "total" in out or "percent" in out:
                return out
    m = _TQDM.search(line)
    if m:
        completed, total = _scaled(m.group("n")), _scaled(m.group("total"))
        if completed is not None and total is not None:
            out = {"completed": completed, "total": total}
            desc = (m.group("desc") or "").strip()
            if desc:
                out["stage"] = desc
            return out
    m = _TQDM_NO_TOTAL.search(line)
    if m:
        completed = _scaled(m.group("n"))
        if completed is not None:
            desc = (m.group("desc") or "").strip()
            return {"completed": completed, "stage": desc} if desc else {"completed": completed}
    m = _COUNTER.search(line)
    if m:
        completed, total = int(m.group(1)), int(m.group(2))
        if total > 0 and completed <= total:
            return {"completed": completed, "total": total}
    m = _PERCENT.search(line)
    if m:
        value = float(m.group(1))
        if value <= 100:
            return {"percent": _js_number(value)}
    return None


class ProgressTracker:
    """Folds parsed lines into a job's monotonic progress (like the TypeScript ``ProgressTracker``).

    A counter that starts over (a second tqdm loop) is added on; a percentage alone maps onto
    ``fixed_total`` or onto 100; with ``fixed_total`` counts are clamped to it.
    """

    def __init__(self, fixed_total: Optional[int] = None) -> None:
        self.fixed_total = fixed_total
        self.completed = 0
        self.total: Optional[int] = fixed_total
        self.stage: Optional[str] = None
        self._offset = 0
        self._segment_total: Optional[int] = None
        self._last_n = 0

    def update(self, parsed: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """Applies one parsed line; returns ``{completed, total, stage?, message?}`` when anything changed."""
        before = (self.completed, self.total, self.stage)
        if "completed" in parsed or "total" in parsed:
            n = parsed.get("completed", self._last_n)
            seg_total = parsed.get("total", self._segment_total)
            restarted = n < self._last_n or (seg_total is not None and self._segment_total is not None
                                             and seg_total != self._segment_total and n <= self._last_n)
            if restarted:
                self._offset += self._last_n
            self._last_n = n
            self._segment_total = seg_total
            if self.fixed_total is None and seg_total is not None:
                self.total = self._offset + seg_total
            self.completed = max(self.completed, self._offset + n)
        elif "percent" in parsed:
            scale = self.fixed_total if self.fixed_total is not None else 100
            if self.fixed_total is None:
                self.total = max(self.total or 0, 100)
            self.completed = max(self.completed, int(math.floor(parsed["percent"] / 100 * scale)))
        if self.total is not None:
            self.completed = min(self.completed, self.total)
        if "stage" in parsed:
            self.stage = parsed["stage"]
        changed = before != (self.completed, self.total, self.stage)
        if not changed and "message" not in parsed:
            return None
        out: Dict[str, Any] = {"completed": self.completed, "total": self.total}
        if self.stage is not None and self.stage != before[2]:
            out["stage"] = self.stage
        if "message" in parsed:
            out["message"] = parsed["message"]
        return out


class LineSplitter:
    """Splits a text stream into lines at ``\\n``, ``\\r\\n`` and a lone ``\\r`` (how progress bars redraw)."""

    def __init__(self) -> None:
        self._rest = ""

    def push(self, chunk: str) -> List[str]:
        """Feeds a chunk; returns the complete lines in it (without terminators)."""
        parts = re.split(r"\r\n|\r|\n", self._rest + chunk)
        self._rest = parts.pop()
        if len(self._rest) > 65536:
            self._rest = self._rest[-65536:]
        return parts

    @property
    def partial(self) -> str:
        """The line being written now (a bar being redrawn): parse it at once."""
        return self._rest

    def end(self) -> List[str]:
        """The unterminated remainder, at the end of the stream."""
        rest, self._rest = self._rest, ""
        return [rest] if rest else []
