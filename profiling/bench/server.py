"""The kept text written by a transcription server against this machine's final model, in
the same run, on the same audio and the same weights: vLLM's CPU build serving the bundled
base (``scripts/setup-vllm``, ``earwig models export``), and base here.

- live: short real English recordings (``shared/audio/real``, LibriSpeech and VCTK, their
  references known) replayed 3 s apart as the microphone, in real time, through the whole
  pipeline: end of speech -> Final (capture of its last sample to the Final at the
  supervisor) p50/p95 and WER, locally, through the server, and through the server with
  the text before each utterance as its prompt;
- sources at once: N simulated live sources (1, 2, 4, 8), each sending the same
  utterances to the one server at the pace they were spoken, as N earwigs would: the
  server's answer time p50/p95 against N, the curve that says how many users it holds;
- files: ``earwig transcribe`` of the same recordings (one file, no gaps' worth of
  speech more), this machine's model against the server (its windows sent together):
  wall seconds (the model's load included, as a user waits for it) and WER;
- death: the server gone after its first Final of a live run (the proxy in front of it
  closes: connections are refused, as a dead server's are): seconds from the next
  utterance's SpeechEnd to its Final (the local model's), against a local pass (the local
  run's p50). Until then each utterance's replay waits for its Final, and the server is
  waited for as long as it takes (``server.wait_s``), so that the server's first Final
  comes before the last utterance however busy the machine.

On a 2-core machine the server and earwig share the cores, which every figure here pays
for; the figures that matter for users come from a GPU (profiling/README.md, "server").
"""

from __future__ import annotations

import asyncio
import csv
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import psutil
import soundfile

from earwig.audio.files import read_audio
from earwig.config import SAMPLE_RATE, Config, ServerConfig, SourceConfig
from earwig.decoding.files import transcribe_files
from earwig.decoding.served import Server
from earwig.messages import Final, PauseSource, SourceEnded, SpeechEnd
from earwig.profiling.harness import REAL_AUDIO
from earwig.profiling.harness.scoring import word_error_rate
from earwig.profiling.harness.served import SERVED_NAME, FaultProxy, VllmServer, vllm_server
from earwig.profiling.report import table
from earwig.shm import segments
from earwig.supervisor.plan import transcription_plan
from earwig.supervisor.supervisor import Supervisor

GAP_S = 3.0
#: Recordings of 2-12 s, in MANIFEST order; a smoke run reads the first few.
SHORTEST_S, LONGEST_S = 2.0, 12.0
COUNT, QUICK_COUNT = 12, 2
SOURCES_AT_ONCE, QUICK_SOURCES_AT_ONCE = (1, 2, 4, 8), (2,)
#: The utterances each simulated source sends (the first of the corpus).
CURVE_CLIPS, QUICK_CURVE_CLIPS = 4, 1


def corpus(count: int) -> list[tuple[np.ndarray, str]]:
    with open(REAL_AUDIO / "MANIFEST.tsv", newline="") as manifest:
        rows = [r for r in csv.DictReader(manifest, delimiter="\t") if r["language"] == "en" and r["reference"]
                and r["file"].startswith(("librispeech_", "vctk_")) and SHORTEST_S <= float(r["seconds"]) <= LONGEST_S]
    return [(read_audio(REAL_AUDIO / r["file"]), r["reference"]) for r in rows[:count]]


def spoken(clips: list[tuple[np.ndarray, str]], folder: Path) -> Path:
    gap = np.zeros(int(GAP_S * SAMPLE_RATE), np.float32)
    path = folder / "spoken.wav"
    soundfile.write(path, np.concatenate([gap, *[part for clip, _ in clips for part in (clip, gap)]]), SAMPLE_RATE)
    return path


async def live(path: Path, server: ServerConfig, kill: FaultProxy | None = None, realtime: bool = True) \
        -> tuple[list[Final], list[Final], float | None]:
    """Every Final of the replay, and those of the utterances the VAD heard (what it did not
    hear is this machine's model's to read whatever the engine, ``audio.unheard``: left out
    of the timings and of the served count); with ``kill`` (the proxy ``server`` goes through),
    the server dies at its first Final (the proxy closes: its port refuses connections, as
    a dead server's does), and the seconds from the next SpeechEnd to its Final are
    returned too. ``realtime`` False: the replay goes as fast as the pipeline reads it (a smoke
    run's: its timings are then not a live source's)."""
    config = Config(mic=SourceConfig(replay=str(path), realtime=realtime), speakers=SourceConfig(enabled=False),
                    server=server)
    plan = transcription_plan(config, segments.run_prefix())
    finals, ends, ended, killed_at, ended_after_kill, after_kill = [], 0, False, None, None, None
    async with Supervisor(plan.rings, plan.actors) as supervisor:
        messages = supervisor.subscribe()
        while not (ended and len(finals) == ends and ends):
            message = await messages.get()
            if isinstance(message, Final):
                finals.append(message)
                if kill is not None and killed_at is None:
                    if message.model:
                        kill.close()
                        killed_at = time.monotonic()
                    supervisor.tell(PauseSource(source="mic", paused=False))
                elif ended_after_kill is not None and after_kill is None and message.heard:
                    after_kill = time.monotonic() - ended_after_kill
            heard_end = isinstance(message, SpeechEnd) and message.heard
            if heard_end and kill is not None and killed_at is None:
                supervisor.tell(PauseSource(source="mic", paused=True))  # until this utterance's Final
            elif heard_end and killed_at is not None and ended_after_kill is None:
                ended_after_kill = time.monotonic()
            ends += isinstance(message, SpeechEnd)
            ended = ended or isinstance(message, SourceEnded)
    return finals, [f for f in finals if f.heard], after_kill


def latencies(finals: list[Final]) -> list[float]:
    """End of speech -> Final of each but the first (which waited for the model to load)."""
    return [(f.stamps.received_ns - f.stamps.captured_ns) / 1e9 for f in finals[1:]
            if f.stamps is not None and f.stamps.captured_ns]


async def sources_at_once(url: str, clips: list[tuple[np.ndarray, str]], sources: int) -> list[float]:
    """Seconds from each request to its answer, ``sources`` clients at once, each sending
    every clip after waiting as long as the clip lasts (plus the gap), as a live source would."""
    server = Server(ServerConfig(url=url, model=SERVED_NAME, timeout_s=600))
    times: list[float] = []

    async def one_source(offset: float) -> None:
        await asyncio.sleep(offset)
        for clip, _ in clips:
            await asyncio.sleep(len(clip) / SAMPLE_RATE + GAP_S)
            sent = time.monotonic()
            await server.transcribe(clip, "en")
            times.append(time.monotonic() - sent)

    try:
        await asyncio.gather(*(one_source(i * GAP_S / sources) for i in range(sources)))
    finally:
        await server.aclose()
    return times


def file_run(path: Path, server: ServerConfig, reference: str) -> tuple[float, float]:
    """``earwig transcribe`` of ``path`` (as the command runs it): wall seconds and WER."""
    said: list[str] = []
    started = time.perf_counter()
    transcribe_files(Config(server=server), [str(path)], lambda _, finals: said.extend(f.text for f in finals))
    return time.perf_counter() - started, word_error_rate(reference, " ".join(said))


def _p(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.2f}" if values else "-"


def run(quick: bool = False, vllm: VllmServer | None = None) -> str:
    """``vllm``: a server already running (the tests'); by default one is started."""
    clips = corpus(QUICK_COUNT if quick else COUNT)
    reference = " ".join(text for _, text in clips)
    rows, wer = [], {}
    with tempfile.TemporaryDirectory() as folder, (nullcontext(vllm) if vllm else vllm_server()) as vllm:
        path = spoken(clips, Path(folder))
        runs = {"this machine (base)": ServerConfig(),
                "server (base on vLLM)": ServerConfig(url=vllm.url, model=SERVED_NAME)}
        if not quick:  # the prompt's own test is tests/test_served.py's; a smoke run spares its replay
            runs["server, with the prompt"] = ServerConfig(url=vllm.url, model=SERVED_NAME, prompt=True)
        # A smoke run replays its two measured runs as fast as the pipeline reads (145 -> 97 s
        # for the whole smoke run alone, vLLM's start included): what it checks is that every row is written, not the timings.
        measured = {name: asyncio.run(live(path, server, realtime=not quick))[:2] for name, server in runs.items()}
        local_p50 = float(np.percentile(latencies(measured["this machine (base)"][1]), 50))
        for name, (finals, heard) in measured.items():
            times = latencies(heard)
            served = sum(bool(f.model) for f in heard)
            wer[name] = word_error_rate(reference, " ".join(f.text for f in finals))
            rows.append((name, str(len(times)), f"{served}/{len(heard)}", _p(times, 50), _p(times, 95),
                         f"{np.percentile(times, 50) / local_p50:.2f}x", f"{wer[name]:.3f}"))
        each_sends = clips[:QUICK_CURVE_CLIPS if quick else CURVE_CLIPS]
        curve = [(str(n), *(_p(t, q) for q in (50, 95)))
                 for n in (QUICK_SOURCES_AT_ONCE if quick else SOURCES_AT_ONCE)
                 for t in [asyncio.run(sources_at_once(vllm.url, each_sends, n))]]
        file_rows = [(f"transcribe: {name}", *file_run(path, server, reference))
                     for name, server in list(runs.items())[:2]]
        proxy = FaultProxy(vllm.url)
        patient = ServerConfig(url=proxy.url, model=SERVED_NAME, wait_s=600, timeout_s=600)
        *_, after_kill = asyncio.run(live(path, patient, kill=proxy))
    audio_s = sum(len(c) for c, _ in clips) / SAMPLE_RATE
    replayed = "as fast as the pipeline reads (--quick: the timings are not live)" if quick else "live"
    lines = [f"server: {len(clips)} real recordings ({audio_s:.0f} s, {GAP_S:.0f} s apart) replayed {replayed}; "
             f"{psutil.cpu_count()} cores shared by the server and earwig; seconds from capture of the "
             "last sample to the Final; WER after Whisper's normalizer"]
    lines += table(("final text by", "timed", "served", "p50 s", "p95 s", "p50 vs local", "WER"), rows)
    lines.append("goal: through the server <= 1.2x local p50, WER within +0.01 of local")
    lines.append("")
    lines.append("sources at once against one server (each sends its utterances as they are spoken): "
                 "request -> answer")
    lines += table(("sources", "p50 s", "p95 s"), curve)
    lines.append("")
    lines.append("earwig transcribe of the same recordings as one file: wall s (the model's load included), "
                 "x real time, WER")
    lines += table(("read by", "wall s", "x real time", "WER"),
                   [(name, f"{wall:.1f}", f"{audio_s / wall:.1f}x", f"{file_wer:.3f}") for name, wall, file_wer in file_rows])
    lines.append("")
    lines.append(f"server killed after its first Final: the next utterance's SpeechEnd -> its Final (the local "
                 f"model's) {after_kill:.2f} s; a local pass p50 {local_p50:.2f} s" if after_kill is not None
                 else "server killed after its first Final: no Final came after it")
    return "\n".join(lines)
