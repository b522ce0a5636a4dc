"""Spoken test material with known text, and how the tests score text against it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np
import soundfile

from earwig.audio.files import read_audio
from earwig.profiling.harness.scoring import word_error_rate, words

__all__ = ["Spoken", "agreement", "spoken_file", "word_error_rate", "words"]

RATE = 16000


def agreement(committed: str, final: str) -> float:
    """Share of the committed words that the final text has too, in the same order."""
    said, kept = words(committed), words(final)
    if not said:
        return 1.0
    matcher = SequenceMatcher(a=said, b=kept, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(said)


@dataclass
class Spoken:
    """A file of sentences with silence between them: its path, texts and utterance audio."""

    path: Path
    texts: list[str]
    utterances: list[np.ndarray]


def spoken_file(path: Path, texts: list[str], voice: str, gap_s: float = 1.5,
                lead_s: float = 1.0) -> Spoken:
    """espeak-ng speech of each text in ``voice``, ``gap_s`` of silence between them."""
    utterances = []
    for i, text in enumerate(texts):
        wav = path.with_name(f"{path.stem}-{i}.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True)
        utterances.append(read_audio(wav))
    parts = [np.zeros(int(lead_s * RATE), np.float32)]
    for audio in utterances:
        parts += [audio, np.zeros(int(gap_s * RATE), np.float32)]
    soundfile.write(path, np.concatenate(parts), RATE)
    return Spoken(path, list(texts), utterances)


def spoken_sentences(folder: Path, texts: list[str]) -> list[Path]:
    """Each text said by espeak-ng (en-us, 150 words a minute) into a file of its own in
    ``folder``: what a dictation test plays into the fake microphone, one sentence a time."""
    paths = [folder / f"{i}.wav" for i in range(len(texts))]
    for path, text in zip(paths, texts):
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    return paths
