"""Machine load for :meth:`TrainingRun.auto_system_stats`: CPU and RAM from ``/proc``, GPUs from ``nvidia-smi``.

Every source is optional: a missing file or command is skipped, never an error.
"""
from __future__ import annotations

import shutil
import subprocess
from typing import Any, Dict, Optional, Tuple

CpuTimes = Tuple[int, int]  # (busy, total) jiffies


def _cpu_times() -> Optional[CpuTimes]:
    try:
        with open("/proc/stat", encoding="ascii") as f:
            parts = f.readline().split()
    except OSError:
        return None
    if not parts or parts[0] != "cpu":
        return None
    values = [int(v) for v in parts[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def _memory_gb() -> Dict[str, float]:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            info = {line.split(":")[0]: int(line.split()[1]) for line in f if line.count(":") == 1}
    except (OSError, ValueError, IndexError):
        return {}
    total = info.get("MemTotal")
    available = info.get("MemAvailable", info.get("MemFree"))
    if total is None or available is None:
        return {}
    kb_per_gb = 1024 * 1024
    return {"ram_total_gb": total / kb_per_gb, "ram_used_gb": max(0, total - available) / kb_per_gb}


def _gpu() -> Dict[str, float]:
    if shutil.which("nvidia-smi") is None:
        return {}
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    util, used, total, count = 0.0, 0.0, 0.0, 0
    for line in out.strip().splitlines():
        try:
            u, m_used, m_total = (float(x) for x in line.split(","))
        except ValueError:
            continue
        util, used, total, count = util + u, used + m_used, total + m_total, count + 1
    if not count:
        return {}
    # nvidia-smi reports MiB; several GPUs: mean utilisation, summed memory
    return {"gpu_utilization_percent": util / count, "gpu_memory_used_gb": used / 1024, "gpu_memory_total_gb": total / 1024}


def read_system_stats(previous: Optional[CpuTimes]) -> Tuple[Dict[str, Any], Optional[CpuTimes]]:
    """One sample: keyword arguments for :meth:`TrainingRun.system_stats`, and the CPU counters to pass
    next time (CPU percent is measured between two calls, so the first call has none)."""
    stats: Dict[str, Any] = {}
    now = _cpu_times()
    if now is not None and previous is not None and now[1] > previous[1]:
        stats["cpu_percent"] = 100.0 * (now[0] - previous[0]) / (now[1] - previous[1])
    stats.update(_memory_gb())
    stats.update(_gpu())
    return stats, now
