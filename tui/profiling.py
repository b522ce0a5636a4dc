"""The profiling panel: where the CPU and memory go, per process, and what each actor counts.

Why psutil, once a second: it reads each process's CPU time and RSS from the OS, the same
figures `top` shows, and reading them costs more than a frame, so the panel samples at 1 Hz
rather than at the spectrogram's frame rate. The monitor's own process (supervisor and
screen) is a row too, so the screen's cost is on screen.
"""

from __future__ import annotations

import psutil
from rich.table import Table
from textual.widgets import Static

#: Counters worth a column; the rest of what actors count stays in Stats messages.
SHOWN_COUNTERS = ("items_written", "input_overflows", "mic_pcm_overruns", "speakers_pcm_overruns",
                  "previews", "skipped_ticks", "finals", "decoder_passes", "speculative_abandoned")


class ProfilingPanel(Static):
    DEFAULT_CSS = """
    ProfilingPanel {
        height: auto;
        border: round $secondary;
        border-title-color: $secondary;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.border_title = "Profiling (p hides)"
        self._processes: dict[int, psutil.Process] = {}

    def sample(self, pids: dict[str, int | None], counters: dict[str, dict[str, float]]) -> None:
        """One row per process: CPU % of one core since the last sample, RSS, counters."""
        table = Table(box=None, pad_edge=False, expand=True)
        for column in ("process", "pid", "CPU %", "RSS MB", "counters"):
            table.add_column(column, justify="left" if column in ("process", "counters") else "right")
        for name, pid in pids.items():
            process = self._process(pid)
            if process is None:
                table.add_row(name, "-", "-", "-", "[dim]not running[/]")
                continue
            try:
                with process.oneshot():
                    cpu, rss = process.cpu_percent(None), process.memory_info().rss
            except psutil.Error:
                table.add_row(name, str(pid), "-", "-", "[dim]exited[/]")
                continue
            shown = counters.get(name, {})
            text = "  ".join(f"{key}={shown[key]:.0f}" for key in SHOWN_COUNTERS if key in shown)
            table.add_row(name, str(pid), f"{cpu:.0f}", f"{rss / 2**20:.0f}", text)
        self.update(table)

    def _process(self, pid: int | None) -> psutil.Process | None:
        if pid is None:
            return None
        if pid not in self._processes:
            try:
                self._processes[pid] = psutil.Process(pid)
            except psutil.Error:
                return None
        return self._processes[pid]
