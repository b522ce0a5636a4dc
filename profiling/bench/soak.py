"""A long session stays flat: the monitor, headless, on an hour or more of real speech per
source, replayed as fast as the pipeline takes it.

Each source replays the English recordings of shared/audio/real (LibriSpeech, LibriVox,
LJ Speech, VCTK, the phone call, the two-talker file), a second of silence after each, in an
order of its own, over and over until it lasts ``--minutes`` (60 each by default: two hours
of speech in all, both sources at once). The replays run as fast as the pipeline's slowest
stage (``realtime = false``: capture waits for the mel actor, which waits for the oldest
frame the final actor still holds), so the run is as long as the machine needs, not the
audio, and no audio is overwritten unread.

A first row once every actor is up (a short run's capture and mel actors can end before
the first timed one), then every ``every`` of wall time (10 minutes; a smoke run: every
10 s) a row: the RSS of every process (the screen's, the supervisor's, each actor's), the
widgets on the screen and the Finals and rows the text columns hold, the ring overruns and
input overflows the actors counted, and the Finals with text in the session log against
those the screen was given (the log also keeps empty Finals, the screen does not show
them). A last row when the mel actor has read both replays to their end and every
utterance has its Final.

Goals: each process's RSS grows less than 5 % from the first row after the first ten minutes
(model loads, caches and allocator arenas settle by then) to the last; the widget count never
changes; no column holds more than ``monitor.column_finals`` Finals (200 here, so an hour
crosses it); the session log holds every Final the screen was given. Overruns are counted,
not a goal: a fast replay waits for its readers, so there should be none. Each source's
kept text is scored against what its replay says (the MANIFEST's references, Whisper's
normalizer): a stage that lost audio anywhere in the run would show there, not in RSS.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import soundfile

from earwig.audio.files import read_audio
from earwig.config import SAMPLE_RATE, Config, MonitorConfig, SourceConfig
from earwig.messages import SOURCES, ActorReady, AnyMessage, Final
from earwig.profiling.bench.monitor import Tracker
from earwig.profiling.harness import SHARED_AUDIO, headless
from earwig.profiling.harness.scoring import word_error_rate
from earwig.profiling.report import table
from earwig.supervisor.plan import transcription_plan

MINUTES = 60
EVERY_S = 600.0
SETTLED_S = 600.0
GOAL_GROWTH = 0.05
COLUMN_FINALS = 200
#: The smoke run: a minute of speech per source, a row every 10 s, a bound it crosses.
QUICK_MINUTES, QUICK_EVERY_S, QUICK_COLUMN_FINALS = 1, 10.0, 4
#: Counters the actors report (Stats) that say audio was lost.
LOSSES = ("input_overflows", "mic_pcm_overruns", "speakers_pcm_overruns")


@dataclass
class Row:
    wall_s: float
    audio_s: dict[str, float]
    rss_mb: dict[str, float]
    widgets: int
    column_finals: dict[str, int]
    column_rows: dict[str, int]
    losses: int
    logged: int
    shown: int


@dataclass
class Soak:
    minutes: float
    column_finals: int
    rows: list[Row] = field(default_factory=list)
    #: Every Final with text the screen was given.
    finals: list[Final] = field(default_factory=list)
    #: What each source's replay says.
    said: dict[str, str] = field(default_factory=dict)


def build_replays(folder: Path, minutes: float) -> dict[str, tuple[Path, str]]:
    """Each source's replay, the English recordings a second apart looped to ``minutes``,
    and what is said in it (the MANIFEST's references, in the same order)."""
    with (SHARED_AUDIO / "real" / "MANIFEST.tsv").open() as manifest:
        rows = sorted((row["file"], row["reference"]) for row in csv.DictReader(manifest, delimiter="\t")
                      if row["language"] == "en")
    clips = [read_audio(SHARED_AUDIO / "real" / name) for name, _ in rows]
    gap = np.zeros(SAMPLE_RATE, np.float32)
    replays = {}
    for number, source in enumerate(SOURCES):
        order = np.random.default_rng(number).permutation(len(clips))
        parts, said, length = [gap], [], len(gap)
        for index in itertools.cycle(order):
            if length >= minutes * 60 * SAMPLE_RATE:
                break
            parts += [clips[index], gap]
            said.append(rows[index][1])
            length += len(clips[index]) + len(gap)
        path = folder / f"{source}.flac"
        soundfile.write(path, np.concatenate(parts), SAMPLE_RATE, subtype="PCM_16")
        replays[source] = path, " ".join(said)
    return replays


def _config(replays: dict[str, tuple[Path, str]], column_finals: int) -> Config:
    sources = {s: SourceConfig(replay=str(path), realtime=False) for s, (path, _) in replays.items()}
    return Config(**sources, monitor=MonitorConfig(column_finals=column_finals))


def _logged_with_text(sessions: Path) -> int:
    """The Finals with text in the session log (it also keeps the empty ones, which the
    screen does not show)."""
    return sum(bool(json.loads(line)["text"]) for path in sessions.glob("*.jsonl")
               for line in path.read_text().splitlines())


def _rss_mb(pids: dict[str, int | None]) -> dict[str, float]:
    rss = {}
    for name, pid in pids.items():
        try:
            rss[name] = psutil.Process(pid).memory_info().rss / 2**20
        except (psutil.Error, ValueError, TypeError):
            pass  # not started yet, or ended
    return rss


async def _soak(config: Config, every_s: float, sessions: Path) -> tuple[list[Row], list[Final]]:
    from earwig.tui.app import MonitorApp

    app = MonitorApp(config)
    actors = {spec.name for spec in transcription_plan(config, "soak").actors}
    tracker = Tracker(len(SOURCES), lambda source, sample: None)
    heard = {source: 0 for source in SOURCES}
    shown = app.handle
    rows: list[Row] = []
    started = time.monotonic()

    def sample() -> None:
        counters = app.model.counters.values()
        rows.append(Row(
            wall_s=time.monotonic() - started, audio_s={s: n / SAMPLE_RATE for s, n in heard.items()},
            rss_mb=_rss_mb(app.model.pids), widgets=len(app.query("*")),
            column_finals={s: len(c.finals) for s, c in app.columns.items()},
            column_rows={s: len(c._rows) for s, c in app.columns.items()},
            losses=int(sum(c.get(name, 0) for c in counters for name in LOSSES)),
            logged=_logged_with_text(sessions),
            shown=len(app.session)))

    def handle(message: AnyMessage) -> None:
        tracker.see(message)
        if isinstance(message, Final):
            heard[message.source] = max(heard[message.source], message.end)
        shown(message)
        if isinstance(message, ActorReady) and not rows and actors <= set(app.model.pids):
            sample()  # every process is up: a short run's capture and mel may end before a timed row
        if tracker.done and app.life.running:
            sample()
            app.end_pipeline()

    async def every() -> None:
        while True:
            await asyncio.sleep(every_s)
            if rows:  # from the first sample on: the screen is composed by then (every process is up)
                sample()

    app.handle = handle
    sampler = asyncio.create_task(every())
    try:
        await app.run_async(headless=True, size=(120, 40))
    finally:
        sampler.cancel()
    if app.return_code:
        raise RuntimeError(f"the monitor exited with {app.return_code}")
    return rows, app.session


def measure(minutes: float, every_s: float, column_finals: int) -> Soak:
    """The run, in a data dir and a state dir of its own (the session log, the actors' log)."""
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        replays = build_replays(folder, minutes)
        with headless.environment(XDG_DATA_HOME=str(folder / "data"), XDG_STATE_HOME=str(folder / "state")):
            rows, finals = asyncio.run(_soak(_config(replays, column_finals), every_s,
                                             folder / "data" / "earwig" / "sessions"))
    return Soak(minutes, column_finals, rows, finals, {s: said for s, (_, said) in replays.items()})


def growth(soak: Soak, settled_s: float) -> dict[str, float]:
    """Each process's RSS growth from its first row at or after ``settled_s`` to its last
    (a capture actor ends with its replay, before the last Finals)."""
    grown = {}
    for name in {name for row in soak.rows for name in row.rss_mb}:
        rows = [row for row in soak.rows if name in row.rss_mb]
        settled = next((row for row in rows if row.wall_s >= settled_s), rows[0])
        grown[name] = rows[-1].rss_mb[name] / settled.rss_mb[name] - 1
    return grown


def run(quick: bool = False, minutes: float | None = None) -> str:
    default, every_s, bound = (QUICK_MINUTES, QUICK_EVERY_S, QUICK_COLUMN_FINALS) if quick \
        else (MINUTES, EVERY_S, COLUMN_FINALS)
    minutes = minutes or default
    soak = measure(minutes, every_s, bound)
    settled_s = 0.0 if quick else SETTLED_S
    names = sorted({name for row in soak.rows for name in row.rss_mb})
    rows = [(f"{row.wall_s / 60:.1f}", " / ".join(f"{row.audio_s[s] / 60:.1f}" for s in SOURCES),
             *(f"{row.rss_mb[n]:.0f}" if n in row.rss_mb else "" for n in names), str(row.widgets),
             " / ".join(f"{row.column_finals[s]}:{row.column_rows[s]}" for s in SOURCES),
             str(row.losses), f"{row.logged}/{row.shown}") for row in soak.rows]
    grown = growth(soak, settled_s)
    wer = {s: word_error_rate(soak.said[s], " ".join(f.text for f in soak.finals if f.source == s)) for s in SOURCES}
    last = soak.rows[-1]
    widgets = {row.widgets for row in soak.rows}
    lines = [f"soak: the monitor, headless, on {minutes} min of real speech per source "
             f"({minutes * len(SOURCES)} min in all), replayed as fast as the pipeline takes it; "
             f"monitor.column_finals = {bound}; {psutil.cpu_count()} cores; "
             f"{last.audio_s['mic'] / last.wall_s:.1f}x / {last.audio_s['speakers'] / last.wall_s:.1f}x"
             " real time (mic / speakers)"]
    lines += table(("wall min", "audio min mic / spk", *(f"{n} MB" for n in names), "widgets",
                    "column Finals:rows mic / spk", "lost", "log / shown"), rows)
    lines.append("")
    lines += table(("", "figure", "goal"), [
        *((f"RSS growth {name}, {'first row' if quick else 'after 10 min'} -> end", f"{grown[name] * 100:+.1f} %",
           f"< {GOAL_GROWTH * 100:.0f} %") for name in names if name in grown),
        ("widgets on screen, fewest..most", f"{min(widgets)}..{max(widgets)}", "constant"),
        ("most Finals in a column", str(max(max(row.column_finals.values()) for row in soak.rows)), f"<= {bound}"),
        ("Finals shown, mic / speakers", " / ".join(str(sum(f.source == s for f in soak.finals)) for s in SOURCES),
         f"> {bound} crosses the bound"),
        ("Finals in the session log / shown", f"{last.logged} / {last.shown}", "all"),
        ("kept text WER, mic / speakers", " / ".join(f"{wer[s]:.3f}" for s in SOURCES), "as in bench wer"),
        ("audio lost (overruns, overflows)", str(last.losses), "0"),
    ])
    return "\n".join(lines)
