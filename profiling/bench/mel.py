"""The mel actor's cost: incremental frames vs recomputing whisper's window, and the live actor.

Compute, in this process, on one thread (as the actor runs), CPU seconds per second of
audio of real espeak-ng speech:

- baseline: the naive streaming approach, ``whisper.log_mel_spectrogram`` over the last
  30 s on every 100 ms update;
- incremental: ``LogMelStream`` fed 100 ms blocks (the actor's cycle, and the baseline's
  update interval), and 10 ms blocks (one hop per call, its worst case);
- VAD: Silero's sequence model through onnxruntime in 100 ms blocks (what the actor runs)
  beside the TorchScript build from the same wheel, one 32 ms chunk per call (silero's
  own streaming usage).

Live: capture and mel actor processes with both sources replaying speech in real time,
as the app runs them; the mel process's CPU time over wall time (psutil) is its share of
one core, with the two capture actors' share beside it.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile
import torch

from earwig.actors.mel import CYCLE_S
from earwig.audio.files import read_audio
from earwig.audio.log_mel import HOP, LogMelStream
from earwig.audio.vad import CHUNK, VoiceActivity
from earwig.config import SAMPLE_RATE, Config, SourceConfig, VadConfig
from earwig.profiling.report import table
from earwig.shm import segments

SENTENCES = ("The quick brown fox jumps over the lazy dog near the river bank.",
             "Please remember to water the plants every morning before work.",
             "Meetings run long when nobody writes down what was decided.")
WINDOW_S = 30.0
UPDATE_S = 0.1


def speech(folder: Path, seconds: float) -> np.ndarray:
    """Sentences of espeak-ng speech with a second of silence after each, ``seconds`` long."""
    parts = []
    for i, text in enumerate(SENTENCES):
        wav = folder / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
        parts += [read_audio(wav), np.zeros(SAMPLE_RATE, np.float32)]
    one = np.concatenate(parts)
    return np.tile(one, int(np.ceil(seconds * SAMPLE_RATE / len(one))))[:int(seconds * SAMPLE_RATE)]


def cpu_per_audio_second(work, audio_seconds: float) -> float:
    started = time.process_time()
    work()
    return (time.process_time() - started) / audio_seconds


# --- compute -------------------------------------------------------------------------------


def naive(audio: np.ndarray, updates: int) -> float:
    """Every 100 ms, whisper's log-mel of the last 30 s (the window is full from the start)."""
    import whisper

    window, step = int(WINDOW_S * SAMPLE_RATE), int(UPDATE_S * SAMPLE_RATE)
    stream = np.tile(audio, int(np.ceil((window + updates * step) / len(audio))))

    def work():
        for i in range(updates):
            end = window + i * step
            whisper.log_mel_spectrogram(torch.from_numpy(stream[end - window:end]))

    return cpu_per_audio_second(work, updates * UPDATE_S)


def incremental(audio: np.ndarray, block: int, bins=(80,)) -> float:
    stream = LogMelStream(bins)

    def work():
        for at in range(0, len(audio), block):
            stream.push(audio[at:at + block])

    return cpu_per_audio_second(work, len(audio) / SAMPLE_RATE)


def vad_onnx(audio: np.ndarray, block: int) -> float:
    vad = VoiceActivity("mic", VadConfig())

    def work():
        for at in range(0, len(audio), block):
            vad.push(audio[at:at + block], at)

    return cpu_per_audio_second(work, len(audio) / SAMPLE_RATE)


def vad_torchscript(audio: np.ndarray) -> float:
    from silero_vad import load_silero_vad

    model = load_silero_vad()
    chunks = torch.from_numpy(audio[:len(audio) // CHUNK * CHUNK].copy()).reshape(-1, CHUNK)

    def work():
        with torch.inference_mode():
            for chunk in chunks:
                model(chunk, SAMPLE_RATE)

    return cpu_per_audio_second(work, len(chunks) * CHUNK / SAMPLE_RATE)


# --- live ---------------------------------------------------------------------------------


async def live(folder: Path, audio: np.ndarray, seconds: float) -> dict[str, float]:
    """Share of one core of each actor over ``seconds`` of real-time replay, both sources."""
    from earwig.supervisor.plan import listen_plan
    from earwig.supervisor.supervisor import Supervisor

    path = folder / "live.wav"
    soundfile.write(path, audio, SAMPLE_RATE)
    config = Config(mic=SourceConfig(replay=str(path)), speakers=SourceConfig(replay=str(path)))
    plan = listen_plan(config, segments.run_prefix())
    async with Supervisor(plan.rings, plan.actors) as supervisor:
        events = supervisor.subscribe()
        names = [spec.name for spec in plan.actors]
        while any(supervisor.pid(n) is None for n in names) or events.qsize() < 10:
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)  # imports and first frames done: steady state from here
        processes = {n: psutil.Process(supervisor.pid(n)) for n in names}
        before = {n: p.cpu_times() for n, p in processes.items()}
        started = time.monotonic()
        await asyncio.sleep(seconds)
        wall = time.monotonic() - started
        after = {n: p.cpu_times() for n, p in processes.items()}
    return {n: (after[n].user + after[n].system - before[n].user - before[n].system) / wall
            for n in names}


# --- report -------------------------------------------------------------------------------


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        audio = speech(folder, 20.0 if quick else 120.0)
        naive_cpu = naive(audio, 20 if quick else 100)
        rows = [("naive: whisper log-mel of 30 s every 100 ms", f"{naive_cpu * 1e3:.1f}", "1x (baseline)", "")]
        cycle = int(CYCLE_S * SAMPLE_RATE)
        for label, block, bins, goal in (
                ("incremental, 100 ms blocks (the actor's cycle)", cycle, (80,), ">= 50x"),
                ("incremental, 100 ms blocks, 80 + 128 bins", cycle, (80, 128), ""),
                ("incremental, 10 ms blocks (1 hop per call)", HOP, (80,), "")):
            cpu = incremental(audio, block, bins)
            rows.append((label, f"{cpu * 1e3:.2f}", f"{naive_cpu / cpu:.0f}x less", goal))
        script = vad_torchscript(audio)
        onnx = vad_onnx(audio, cycle)
        rows.append(("VAD: Silero TorchScript, per 32 ms chunk", f"{script * 1e3:.2f}", "", ""))
        rows.append(("VAD: Silero sequence ONNX, 100 ms blocks (the actor's)", f"{onnx * 1e3:.2f}",
                     f"{script / onnx:.1f}x less than TorchScript", ""))
        lines = [f"mel: CPU ms per second of audio, one thread, {len(audio) / SAMPLE_RATE:.0f} s of "
                 f"espeak-ng speech, same run ({psutil.cpu_count()} cores)"]
        lines += table(("", "CPU ms / s audio", "vs naive", "goal"), rows)

        seconds = 5.0 if quick else 30.0
        shares = asyncio.run(live(folder, audio, seconds))
        lines.append("")
        lines.append(f"live: both sources replayed in real time for {seconds:.0f} s; "
                     "share of one core per actor process")
        live_rows = [(name, f"{share * 100:.2f} %", "<= 5 %" if name == "mel" else "")
                     for name, share in shares.items()]
        lines += table(("actor", "CPU", "goal"), live_rows)
    return "\n".join(lines)
