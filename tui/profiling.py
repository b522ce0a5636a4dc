"""The profiling panel: where the CPU and memory go, per process, and what each actor counts;
and where the latency goes, stage by stage, over the last texts (``Latencies``: the figures
``earwig profile`` reports, as they change).

Why psutil, once a second: it reads each process's CPU time and RSS from the OS, the same
figures `top` shows, and reading them costs more than a frame, so the panel samples at 1 Hz
rather than at the spectrogram's frame rate. The monitor's own process (supervisor and
screen) is a row too, so the screen's cost is on screen.
"""

from __future__ import annotations

from collections import deque

from rich.console import Group
from rich.table import Table
from textual.widgets import Static

from earwig.messages import Final, Partial, SpeechStart
from earwig.profiling.process_usage import ProcessUsage
from earwig.profiling.profile_report import STAGES, summary, timed

#: Counters worth a column; the rest of what actors count stays in Stats messages.
SHOWN_COUNTERS = ("items_written", "input_overflows", "mic_pcm_overruns", "speakers_pcm_overruns",
                  "previews", "skipped_ticks", "finals", "decoder_passes", "rereads", "speculative_abandoned")


class Latencies:
    """The stages of the last ``KEEP`` Finals and Partials, and each utterance's onset ->
    first Partial, stamped as the screen shows them."""

    KEEP = 50

    def __init__(self) -> None:
        self.finals: deque[dict] = deque(maxlen=self.KEEP)
        self.partials: deque[dict] = deque(maxlen=self.KEEP)
        self.onset_to_partial_s: deque[float] = deque(maxlen=self.KEEP)
        self._onsets: dict[tuple[str, int], int] = {}

    def speech_started(self, start: SpeechStart, onset_captured_ns: int | None) -> None:
        if onset_captured_ns:
            self._onsets[start.source, start.start] = onset_captured_ns

    def shown(self, text: Final | Partial, at_ns: int) -> None:
        if text.stamps is None:
            return
        if isinstance(text, Final):
            if text.text:
                self.finals.append(timed(at_ns, text))
            self._onsets.pop((text.source, text.start), None)
            return
        self.partials.append(timed(at_ns, text))
        onset = self._onsets.pop((text.source, text.start), None)
        if onset is not None:
            self.onset_to_partial_s.append((at_ns - onset) / 1e9)

    def table(self) -> Table:
        table = Table(box=None, pad_edge=False, expand=True)
        for column in ("latency, last texts", "Final p50 ms", "Final p95 ms", "Partial p50 ms", "Partial p95 ms"):
            table.add_column(column, justify="left" if column.startswith("latency") else "right")
        for stage in [stage for stage, _, _ in STAGES] + ["end to end"]:
            figures = [summary([t["end_to_end_s"] if stage == "end to end" else t["stages_s"][stage] for t in texts])
                       for texts in (self.finals, self.partials)]
            table.add_row(stage, *(f"{f[k] * 1e3:.0f}" if f.get("count") else "-"
                                   for f in figures for k in ("p50", "p95")))
        onset = summary(list(self.onset_to_partial_s))
        table.add_row("onset -> first Partial", "", "", *(f"{onset[k] * 1e3:.0f}" if onset.get("count") else "-"
                                                           for k in ("p50", "p95")))
        return table


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
        self._usage = ProcessUsage()

    def sample(self, pids: dict[str, int | None], counters: dict[str, dict[str, float]],
               latencies: Latencies) -> None:
        """One row per process: CPU % of one core since the last sample, RSS, counters; then
        the latency table."""
        table = Table(box=None, pad_edge=False, expand=True)
        for column in ("process", "pid", "CPU %", "RSS MB", "counters"):
            table.add_column(column, justify="left" if column in ("process", "counters") else "right")
        for name, pid in pids.items():
            usage = self._usage.read(pid) if pid is not None else None
            if usage is None:
                table.add_row(name, "-" if pid is None else str(pid), "-", "-",
                              "[dim]not running[/]" if pid is None else "[dim]exited[/]")
                continue
            cpu, rss = usage
            shown = counters.get(name, {})
            text = "  ".join(f"{key}={shown[key]:.0f}" for key in SHOWN_COUNTERS if key in shown)
            table.add_row(name, str(pid), f"{cpu:.0f}", f"{rss / 2**20:.0f}", text)
        self.update(Group(table, "", latencies.table()))
