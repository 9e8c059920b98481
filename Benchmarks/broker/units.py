"""Sizes and medians, shared by the broker benchmark's orchestrator (bench_broker.py) and its
phases (lossless.py, idle_cpu.py)."""

from __future__ import annotations

KiB, MiB = 1 << 10, 1 << 20


def size_label(size: int) -> str:
    if size >= MiB and size % MiB == 0:
        return f"{size // MiB} MiB"
    if size >= KiB and size % KiB == 0:
        return f"{size // KiB} KiB"
    return f"{size} B"


def median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2
