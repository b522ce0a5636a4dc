"""What the preview and final actors share: a model loaded on first need, the frames of an
utterance from the mel rings, and one encoder pass over a batch of utterance windows.

Why load on first need: an assistant that sits idle should cost almost nothing, so the
model actor starts without weights and loads them at the first SpeechStart. The audio that
arrives meanwhile waits in the rings; it is read by sample position once the model is ready.

Why the encoder runs here, once per window: the decoder reads the same audio features for
every token, every temperature fallback and the word alignment, so they are computed once
and handed to ``whisper.decode`` (which skips its own encoder when given features).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import psutil
import torch
from whisper.model import Whisper

from earwig import model_store
from earwig.actors.mel_frames import HOP, SILENCE_LOG_MEL, bins_for_model, model_input, open_frames
from earwig.actors.runtime import Actor
from earwig.compute import torch_device
from earwig.errors import EarwigError
from earwig.messages import ModelState, Source
from earwig.shm import Ring

#: How long to wait for the mel actor to publish the frames of an utterance's last samples.
FRAMES_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ModelParams:
    role: Literal["preview", "final"]
    model: str
    #: "auto", "cpu", "cuda" or "cuda:N", as in the config.
    device: str
    #: ``{source: {bins: frame ring name}}`` of every source this model transcribes.
    frame_rings: dict[Source, dict[int, str]]
    #: A language code, or "auto" to detect it per utterance (English-only models: "en").
    language: str = "en"
    task: str = "transcribe"
    initial_prompt: str = ""
    #: The preview's re-read interval.
    interval_s: float = 0.25
    #: Encoder/decoder threads on the CPU; 0 leaves PyTorch's default (one per core).
    threads: int = 0


class ModelSession:
    """The model of one actor, and the frame rings it reads."""

    def __init__(self, actor: Actor, params: ModelParams) -> None:
        self._actor, self.params = actor, params
        self.device = torch_device(params.device)
        if params.threads:
            torch.set_num_threads(params.threads)
        self.rings: dict[Source, Ring] = {
            source: open_frames(rings, bins_for_model(params.model), params.model)
            for source, rings in params.frame_rings.items()}
        self.model: Whisper | None = None
        self._loading: asyncio.Task | None = None

    # --- the model ------------------------------------------------------------------------

    async def ready_model(self) -> Whisper:
        """The model, loading it (once, in a thread so heartbeats go on) on the first call."""
        if self.model is None:
            if self._loading is None:
                self._loading = asyncio.create_task(self._load())
            self.model = await asyncio.shield(self._loading)
        return self.model

    async def _load(self) -> Whisper:
        params = self.params
        self._state("loading")
        memory_before, started = self._memory(), time.monotonic()
        try:
            model = await asyncio.to_thread(model_store.load, params.model, self.device)
        except EarwigError as error:
            self._state("failed", error=error.problem, fix=error.fix)
            raise
        self._state("ready", memory_bytes=self._memory() - memory_before,
                    load_s=time.monotonic() - started)
        return model

    def _memory(self) -> int:
        if self.device.type == "cuda":
            return torch.cuda.memory_allocated(self.device)
        return psutil.Process().memory_info().rss

    def _state(self, state: str, **details) -> None:
        self._actor.publish(ModelState(role=self.params.role, model=self.params.model, state=state,
                                       device=str(self.device), **details))

    @property
    def language(self) -> str | None:
        """The language to decode in; None: detect it (a multilingual model set to "auto")."""
        if self.model is not None and not self.model.is_multilingual:
            return "en"
        return None if self.params.language == "auto" else self.params.language

    # --- frames ---------------------------------------------------------------------------

    def published_sample(self, source: Source) -> int:
        """Sample position up to which the source's frames are published."""
        return self.rings[source].published * HOP

    async def frames(self, source: Source, start: int, end: int | None = None) -> np.ndarray:
        """Frames ``(n, bins)`` of samples ``[start, end)``, as whisper computes them for that
        audio alone (``(end - start) // HOP`` frames); ``end=None``: all published so far.
        Waits for the mel actor when the last frames are not published yet."""
        ring = self.rings[source]
        first = start // HOP
        count = (end - start) // HOP if end is not None else ring.published - first
        deadline = time.monotonic() + FRAMES_TIMEOUT_S
        while ring.published < first + count and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        count = min(count, ring.published - first)
        if count <= 0:
            return np.zeros((0, ring.spec.item_len), np.float32)
        batch = ring.reader(start=first).read(max_items=count)
        kept = batch.data if batch is not None else np.zeros((0, ring.spec.item_len), np.float32)
        # The model fell more than a ring behind: the lost head reads as silence.
        gap = np.full((count - len(kept), ring.spec.item_len), SILENCE_LOG_MEL, np.float32)
        return np.concatenate((gap, kept))

    def encode(self, windows: list[np.ndarray]) -> torch.Tensor:
        """Audio features of each utterance's frames (padded to 30 s as ``transcribe`` does)."""
        assert self.model is not None
        mel = torch.from_numpy(np.stack([model_input(frames) for frames in windows])).to(self.device)
        with torch.inference_mode():
            return self.model.embed_audio(mel.to(next(self.model.parameters()).dtype))

    def close(self) -> None:
        for ring in self.rings.values():
            ring.close()
