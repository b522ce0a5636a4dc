"""A model actor's memory over many utterances of varied length: the final pass as the
actors run it (encoder windows rounded up to 2 s, the heap given back between passes)
against each half of that and against neither, on the same utterances of real speech.

Each way runs in a process of its own (RSS is per process): the model loads, then reads
utterances of 1-15 s cut from LibriSpeech at random (one seed for all four), one at a time,
as the final actor does. Reported: RSS after the first tenth of them and at the end, the
growth between the two, and the time a pass took, against the way with neither.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import numpy as np
import psutil

from earwig.profiling.harness import SHARED_AUDIO
from earwig.profiling.report import table

REAL = SHARED_AUDIO / "real"
#: (label, encoder windows rounded up to 2 s, heap given back after each pass)
WAYS = [("any length, heap kept (neither)", False, False),
        ("2 s windows, heap kept", True, False),
        ("any length, heap given back", False, True),
        ("2 s windows, heap given back (the actors)", True, True)]
UTTERANCES = 120
SEED = 1


def run(quick: bool = False) -> str:
    model, count = ("tiny.en", 3) if quick else ("base", UTTERANCES)
    found = [_one_way(model, count, buckets, give_back) for _, buckets, give_back in WAYS]
    baseline_s = np.median(found[0]["pass_s"])
    rows = []
    for (label, _, _), way in zip(WAYS, found):
        early, last = way["rss_mb"][max(0, count // 10 - 1)], way["rss_mb"][-1]
        rows.append((label, f"{early:.0f}", f"{last:.0f}", f"{100 * (last - early) / early:+.1f} %",
                     f"{np.median(way['pass_s']):.3f}", f"{np.median(way['pass_s']) / baseline_s:.2f}x",
                     f"{1000 * max(way['give_back_s'], default=0):.1f}"))
    return "\n".join([f"model memory: {model}, {count} utterances of 1-15 s of real speech, one at a time"]
                     + table(("", f"RSS MB after {max(1, count // 10)}", f"after {count}", "growth",
                              "pass p50 s", "vs neither", "give back max ms"), rows))


def _one_way(model: str, count: int, buckets: bool, give_back: bool) -> dict:
    command = [sys.executable, "-m", "earwig.profiling.bench.model_memory", model, str(count),
               str(int(buckets)), str(int(give_back))]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def _utterances(bins: int, count: int):
    from earwig.audio.files import read_audio
    from earwig.audio.log_mel import log_mel

    files = sorted(REAL.glob("librispeech*"))[:10]
    frames = np.concatenate([log_mel(read_audio(path), bins) for path in files])
    pick = random.Random(SEED)
    for _ in range(count):
        length = pick.randint(100, 1500)
        start = pick.randint(0, len(frames) - length)
        yield frames[start:start + length]


def _measure(model_name: str, count: int, buckets: bool, give_back: bool) -> dict:
    """In this process: load, then read ``count`` utterances one at a time."""
    import torch

    from earwig import model_store
    from earwig.actors.model_session import give_back_free_heap
    from earwig.audio.log_mel import bins_for_model
    from whisper.audio import N_FRAMES

    from earwig.decoding.model import PAD_FRAMES, LoadedModel
    from earwig.decoding.transcribe import Window, compile_alignment, transcribe

    model = LoadedModel(model_store.load(model_name, torch.device("cpu")), torch.device("cpu"))
    compile_alignment()
    found = {"rss_mb": [], "pass_s": [], "give_back_s": []}
    for frames in _utterances(bins_for_model(model_name), count):
        any_length = None if buckets else min(N_FRAMES, -(-(len(frames) + PAD_FRAMES) // 2) * 2)
        started = time.perf_counter()
        transcribe(model, [Window(frames)], n_frames=any_length)
        found["pass_s"].append(time.perf_counter() - started)
        if give_back:
            started = time.perf_counter()
            give_back_free_heap()
            found["give_back_s"].append(time.perf_counter() - started)
        found["rss_mb"].append(psutil.Process().memory_info().rss / 2**20)
    return found


if __name__ == "__main__":
    name, n, rounded, returned = sys.argv[1:]
    print(json.dumps(_measure(name, int(n), rounded == "1", returned == "1")))
