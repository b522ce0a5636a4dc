"""CPU and memory of processes by pid, as psutil reads them from the OS (what `top`
shows), for `earwig profile` and the monitor's profiling panel.

Why one psutil object per process, kept: psutil counts CPU % between two calls on the
same object, so a fresh object would always read 0.
"""

from __future__ import annotations

import psutil


class ProcessUsage:
    def __init__(self) -> None:
        self._processes: dict[int, psutil.Process] = {}

    def read(self, pid: int) -> tuple[float, int] | None:
        """CPU % of one core since the last read of ``pid`` (0.0 the first time) and RSS
        bytes; None once the process is gone."""
        try:
            process = self._processes.get(pid) or self._processes.setdefault(pid, psutil.Process(pid))
            with process.oneshot():
                return process.cpu_percent(None), process.memory_info().rss
        except psutil.Error:
            return None
