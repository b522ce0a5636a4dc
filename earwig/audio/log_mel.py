"""Log-mel frames, one STFT column per 10 ms hop, equal to openai-whisper's own.

Why incremental: a live source gains one hop every 10 ms. Recomputing
``whisper.log_mel_spectrogram`` over a 30 s window on every update would spend 3000
columns for every new one; here each hop costs one column, and all hops that are ready are
computed in one ``torch.stft`` call.

Why the frames equal whisper's: frame ``t`` is centred on sample ``t * HOP`` (whisper's
``center=True`` STFT). Its 400-sample window is taken from the stream itself, with
whisper's reflect padding reproduced at the start of the stream (and at its end, when a
replayed source says where it ended), so every frame matches ``log_mel_spectrogram`` of the
whole audio. Only the window-wide clamp (``max - 8``) and the ``(x + 4) / 4`` scaling are
left out: they depend on which window a model reads, so readers apply
``normalize_window`` to the frames they read.

The filter banks are openai-whisper's own (``whisper.audio.mel_filters``), so the frames
can never drift from what the models were trained on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from whisper.audio import HOP_LENGTH, N_FFT, N_FRAMES, mel_filters

from earwig.errors import EarwigError
from earwig.shm import Ring

HOP = HOP_LENGTH
HALF_WINDOW = N_FFT // 2
#: Bin counts openai-whisper's filter banks exist for.
SUPPORTED_BINS = (80, 128)
#: ``log10`` of whisper's power floor: the value of a frame of digital silence.
SILENCE_LOG_MEL = -10.0


def bins_for_model(model: str) -> int:
    """Mel bins a Whisper model was trained on: 128 for large-v3 and its turbo, else 80."""
    name = model.rsplit("/", 1)[-1].lower()
    return 128 if "large-v3" in name or name.startswith("turbo") else 80


def check_bins(bins: Iterable[int]) -> tuple[int, ...]:
    bins = tuple(sorted(set(bins)))
    unsupported = [n for n in bins if n not in SUPPORTED_BINS]
    if unsupported or not bins:
        raise EarwigError(f"mel bin count {unsupported or 'none'} is not one Whisper uses",
                          f"use {' or '.join(map(str, SUPPORTED_BINS))} bins")
    return bins


def normalize_window(frames: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Whisper's last step over the frames a model reads: clamp at ``max - 8``, scale.

    ``frames`` holds the frames of one window (any shape); the result is what
    ``whisper.log_mel_spectrogram`` would return for the audio of that window.
    """
    if isinstance(frames, torch.Tensor):
        return (torch.maximum(frames, frames.max() - 8.0) + 4.0) / 4.0
    return (np.maximum(frames, frames.max() - 8.0) + 4.0) / 4.0


def model_input(frames: np.ndarray, n_frames: int = N_FRAMES) -> np.ndarray:
    """One model window, shape (bins, n_frames), as whisper's ``transcribe`` builds it.

    ``transcribe`` pads the audio with 30 s of zeros before its log-mel, so a short
    utterance is followed by frames of digital silence, and the clamp at ``max - 8`` is
    taken over the whole padded window. Frames past ``n_frames`` are dropped.
    """
    window = np.full((n_frames, frames.shape[1]), SILENCE_LOG_MEL, np.float32)
    kept = frames[:n_frames]
    window[:len(kept)] = kept
    return np.ascontiguousarray(normalize_window(window).T)


class LogMelStream:
    """One source's audio in, its log-mel frames out, for each bin count asked for.

    Feed samples in order with ``push``; each call returns the frames that became complete.
    ``first_frame`` lets a restarted actor resume: it is then fed from ``needs_sample``.
    ``holdback`` samples at the end stay unused until more arrive or ``finish`` says where
    the audio ended: a replayed file's last ring item is zero-padded past its end, and a
    frame over that padding would differ from whisper's.
    """

    def __init__(self, bins: Iterable[int], device: torch.device | str = "cpu",
                 first_frame: int = 0, holdback: int = 0) -> None:
        self.device = torch.device(device)
        self.holdback = holdback
        self.bins = check_bins(bins)
        self.next_frame = first_frame
        #: Sample index of ``_samples[0]``: the first sample of the next frame's window.
        self._origin = max(0, first_frame * HOP - HALF_WINDOW)
        self._samples = np.zeros(0, np.float32)
        self._window = torch.hann_window(N_FFT, device=self.device)
        self._filters_t = {n: mel_filters(self.device, n).T.contiguous() for n in self.bins}

    @property
    def needs_sample(self) -> int:
        """Index of the next sample this stream expects."""
        return self._origin + len(self._samples)

    def push(self, samples: np.ndarray) -> dict[int, np.ndarray]:
        """Append samples; returns ``{bins: frames (k, bins)}`` for the frames now complete."""
        self._samples = np.concatenate((self._samples, np.asarray(samples, np.float32)))
        padded = self._window_start_padded()
        if padded is None:
            return self._empty()
        usable = len(padded) - self.holdback
        count = (usable - N_FFT) // HOP + 1 if usable >= N_FFT else 0
        return self._emit(padded, count)

    def finish(self, end: int | None = None) -> dict[int, np.ndarray]:
        """End of the source at sample ``end``: the last frames, reflect-padded at the end.

        Whisper gives ``len(audio) // HOP`` frames; the ones whose window reaches past the
        end are computed over the reflected tail, exactly as ``torch.stft(center=True)``.
        """
        end = self.needs_sample if end is None else end
        self._samples = self._samples[:max(0, end - self._origin)]
        padded = self._window_start_padded()
        count = end // HOP - self.next_frame
        if padded is None or count <= 0 or len(padded) < 2:
            return self._empty()
        tail = padded[-2:-2 - HALF_WINDOW:-1]  # reflect: x[end + j] = x[end - 2 - j]
        return self._emit(np.concatenate((padded, tail)), count)

    def skip_to(self, sample: int) -> dict[int, np.ndarray]:
        """Audio before ``sample`` was lost (a ring overrun): frames whose window touches
        the gap become silence, so frame indices stay tied to sample positions."""
        first_whole = -(-(sample + HALF_WINDOW) // HOP)
        count = max(0, first_whole - self.next_frame)
        filler = {n: np.full((count, n), SILENCE_LOG_MEL, np.float32) for n in self.bins}
        self.next_frame += count
        self._origin = sample
        self._samples = np.zeros(0, np.float32)
        return filler

    # --- compute --------------------------------------------------------------------------

    def _window_start_padded(self) -> np.ndarray | None:
        """Samples from the next frame's window start on, reflect-padded before sample 0."""
        start = self.next_frame * HOP - HALF_WINDOW
        if start >= 0:
            return self._samples[start - self._origin:]
        if len(self._samples) <= HALF_WINDOW:  # the reflection needs samples 1..200
            return None
        return np.concatenate((self._samples[1:1 - start][::-1], self._samples))

    def _emit(self, padded: np.ndarray, count: int) -> dict[int, np.ndarray]:
        if count <= 0:
            return self._empty()
        audio = torch.from_numpy(np.ascontiguousarray(padded[:(count - 1) * HOP + N_FFT]))
        spectrum = torch.stft(audio.to(self.device, non_blocking=True), N_FFT, HOP,
                              window=self._window, center=False, return_complex=True)
        # (frames, freqs), contiguous: whisper's |X|^2 and filters @ power, transposed.
        power = spectrum.T.abs().square_()
        frames = {n: torch.mm(power, filters_t).clamp_(min=1e-10).log10_().cpu().numpy()
                  for n, filters_t in self._filters_t.items()}
        self.next_frame += count
        keep_from = self.next_frame * HOP - HALF_WINDOW
        if keep_from > self._origin:
            self._samples = self._samples[keep_from - self._origin:]
            self._origin = keep_from
        return frames

    def _empty(self) -> dict[int, np.ndarray]:
        return {n: np.zeros((0, n), np.float32) for n in self.bins}


def log_mel(audio: np.ndarray, bins: int) -> np.ndarray:
    """The frames of ``audio`` alone (a file, a line read again), as the mel actor would
    publish them for the same audio."""
    stream = LogMelStream([bins])
    head = stream.push(audio)[bins]
    return np.concatenate((head, stream.finish(len(audio))[bins]))


def open_frames(rings: Mapping[int, str], bins: int, model: str) -> Ring:
    """Attach the frame ring a model reads, or say why the running mel actor cannot feed it."""
    computed = "/".join(map(str, sorted(rings))) or "no"
    if bins not in rings:
        raise EarwigError(
            f"model {model} reads {bins}-bin mel frames, but the mel actor computes {computed}-bin frames only",
            "name the model in the config (models.preview / models.final) before starting, "
            "so the mel actor is started with its bin count")
    ring = Ring.attach(rings[bins])
    if ring.spec.item_len != bins:
        found = ring.spec.item_len
        ring.close()
        raise EarwigError(f"frame ring {rings[bins]} holds {found}-bin frames, not {bins}",
                          "restart earwig; the rings of another run were found")
    return ring
