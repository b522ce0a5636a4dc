"""What the preview and final actors share: a model loaded on first need (its passes are
``earwig.decoding.model.LoadedModel``) and the frames of an utterance from the mel rings.

Why load on first need: an assistant that sits idle should cost almost nothing, so the
model actor starts without weights and loads them at the first SpeechStart. The audio that
arrives meanwhile waits in the rings; it is read by sample position once the model is ready.
"""

from __future__ import annotations

import asyncio
import ctypes
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import psutil
import torch
from whisper.model import Whisper

from earwig import model_store
from earwig.actors.runtime import Actor
from earwig.audio.log_mel import HOP, SILENCE_LOG_MEL, bins_for_model, open_frames
from earwig.compute import torch_device
from earwig.config import ServerConfig
from earwig.decoding.model import LoadedModel
from earwig.errors import EarwigError
from earwig.messages import ActorFailed, ModelState, Source
from earwig.shm import Ring, RingReader

#: How long to wait for the mel actor to publish the frames of an utterance's last samples.
FRAMES_TIMEOUT_S = 5.0
#: The frame rings' reader slot in which the final actor holds the oldest frame it still
#: needs; a fast replay's mel actor paces itself to it (``actors/mel``).
HOLDING_SLOT = 0
#: glibc's ``malloc_trim``; None where the C library has none (musl, macOS).
_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)


def give_back_free_heap() -> None:
    """Return the heap's free pages to the system, also those between blocks still in use
    (glibc otherwise gives back only the top of the heap); nothing where there is no glibc."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


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
    #: The longest window the final pass reads, in samples (``vad.max_utterance_s``): a
    #: fragment joined with the utterance before it stays within it.
    max_window: int = 25 * 16_000
    #: The model a line is transcribed again with (``models.retry``); "" for this model.
    retry_model: str = ""
    #: ``{source: PCM ring name}``: a retried line's audio, while the ring holds it; the
    #: audio sent to a server.
    pcm_rings: dict[Source, str] = field(default_factory=dict)
    #: The transcription server the final actor sends utterances to first, its model named
    #: (``decoding.served.connect`` resolved it); None: this machine's model only.
    server: ServerConfig | None = None
    #: The final pass reads a doubted greedy pass again by beam search where its window's
    #: loud and quiet parts are less than this many dB apart (``models.reread_noisy_db``;
    #: infinity with ``models.reread_live``; 0: never).
    reread_below_db: float = 0.0


class ModelSession:
    """The model of one actor, and the frame rings it reads."""

    def __init__(self, actor: Actor, params: ModelParams,
                 warm_up: Callable[[], None] = lambda: None, holds: bool = False) -> None:
        self._actor, self.params = actor, params
        self._warm_up = warm_up
        #: Whether this actor holds what it still needs in the rings (``hold``).
        self._slot = HOLDING_SLOT if holds else None
        self.device = torch_device(params.device)
        if params.threads:
            torch.set_num_threads(params.threads)
        self.rings: dict[Source, Ring] = {}
        #: One waiter per ring, kept: a reader that sleeps on the futex does so in a helper
        #: thread of its own, which a reader made per pass would start again each time.
        self._waiters: dict[Source, RingReader] = {}
        self._open_rings(params.model)
        self.model: Whisper | None = None
        #: The model's passes (encode, detect, decode), once it is loaded.
        self.loaded: LoadedModel | None = None
        self._loading: asyncio.Task | None = None
        #: The retry model where it is not this one ("": this one, or it could not be had),
        #: and once a retry loaded it, its passes.
        self._retry_wanted = params.retry_model if params.retry_model != params.model else ""
        self._retry: LoadedModel | None = None
        #: Whether frames were read (a pass ran) since the heap was last trimmed (``idle``).
        self._passed = False

    # --- the model ------------------------------------------------------------------------

    async def ready_model(self) -> Whisper:
        """The model, loading it (once, in a thread so heartbeats go on) on the first call."""
        if self.model is None:
            if self._loading is None:
                self._loading = asyncio.create_task(self._load())
            self.model = await asyncio.shield(self._loading)
        return self.model

    async def _load(self) -> Whisper:
        """The first choice that fits (``_choices``); one that does not is said, not fatal."""
        wanted, did_not_fit = None, None
        for model, device in self._choices():
            wanted = wanted or (model, device)
            self._state("loading", model, device)
            memory_before, started = self._memory(device), time.monotonic()
            try:
                self._open_rings(model)
                loaded = await asyncio.to_thread(self._load_and_warm, model, device)
            except model_store.OutOfMemory as error:
                self._state("failed", model, device, error=error.problem, fix=error.fix)
                did_not_fit = did_not_fit or error
                self._release(device)
                continue
            except EarwigError as error:
                self._state("failed", model, device, error=error.problem, fix=error.fix)
                raise
            self._state("ready", model, device, memory_bytes=self._memory(device) - memory_before,
                        load_s=time.monotonic() - started)
            if did_not_fit is not None:
                self._actor.publish(ActorFailed(
                    actor=self._actor.name, fatal=False,
                    error=f"{did_not_fit.problem}: {self.params.role} model {model} on {device} instead",
                    fix=f"free memory; the next load (after eviction) tries {wanted[0]} on {wanted[1]} again"))
            return loaded
        raise did_not_fit

    async def retry_model(self) -> LoadedModel:
        """The model a retry reads with: ``retry_model``, loaded (once, in a thread) beside
        this actor's own on the first retry; this actor's own where they are the same, or
        where the retry model cannot be had (said once, in an ActorFailed that is not fatal)."""
        wanted = self._retry_wanted
        if self._retry is not None or not wanted:
            return self._retry or await self._own_loaded()
        self._state("loading", wanted, self.device, role="retry")
        started = time.monotonic()
        try:
            whisper = await asyncio.to_thread(model_store.load, wanted, self.device)
        except (EarwigError, torch.OutOfMemoryError) as error:
            problem, fix = (error.problem, error.fix) if isinstance(error, EarwigError) else (str(error), "")
            self._state("failed", wanted, self.device, role="retry", error=problem, fix=fix)
            self._actor.publish(ActorFailed(actor=self._actor.name, fatal=False,
                                            error=f"retry model {wanted}: {problem}; retrying with {self.params.model}",
                                            fix=fix or "set models.retry to a model `earwig models` lists"))
            self._retry_wanted = ""
            return await self._own_loaded()
        self._retry = LoadedModel(whisper, self.device, self.params.language, self.params.task,
                                  self.params.initial_prompt)
        self._state("ready", wanted, self.device, role="retry", load_s=time.monotonic() - started)
        return self._retry

    async def _own_loaded(self) -> LoadedModel:
        await self.ready_model()
        return self.loaded

    def _choices(self) -> Iterator[tuple[str, torch.device]]:
        """The configured model and device; when that does not fit, smaller models whose mel
        frames the mel actor computes (largest first, same device), then on the CPU."""
        model, device = self.params.model, torch_device(self.params.device)
        yield model, device
        computed = set.intersection(*(set(rings) for rings in self.params.frame_rings.values()))
        english = self.params.language == "en" or model.endswith(".en")
        smaller = [m for m in model_store.smaller_models(model, english) if bins_for_model(m) in computed]
        yield from ((m, device) for m in smaller)
        if device.type == "cuda":
            yield model, torch.device("cpu")

    def _load_and_warm(self, model: str, device: torch.device) -> Whisper:
        """Load, then run one pass over a second of silence and the actor's own warm-up:
        first calls pick kernels, grow memory pools and compile (numba: 2.3 s for the word
        alignment's DTW), which the first utterance would otherwise wait for. Running out
        of memory in that pass counts as not fitting, too."""
        self.device, self.model = device, model_store.load(model, device)
        self.loaded = LoadedModel(self.model, device, self.params.language, self.params.task,
                                  self.params.initial_prompt)
        try:
            self.loaded.warm_up()
        except torch.OutOfMemoryError:
            raise model_store.no_memory(model, device) from None
        self._warm_up()
        return self.model

    def _release(self, device: torch.device) -> None:
        """Hand back what a load that did not fit took, before the next choice loads."""
        self.model = self.loaded = None
        if device.type == "cuda":
            torch.cuda.empty_cache()

    @staticmethod
    def _memory(device: torch.device) -> int:
        if device.type == "cuda":
            return torch.cuda.memory_allocated(device)
        return psutil.Process().memory_info().rss

    def _state(self, state: str, model: str, device: torch.device, role: str = "", **details) -> None:
        self._actor.publish(ModelState(role=role or self.params.role, model=model, state=state,
                                       device=str(device), **details))

    def _open_rings(self, model: str) -> None:
        """The frame rings ``model`` reads (a fallback model may read another bin count)."""
        if self.rings and next(iter(self.rings.values())).spec.item_len == bins_for_model(model):
            return
        self.close()
        self.rings = {source: open_frames(rings, bins_for_model(model), model)
                      for source, rings in self.params.frame_rings.items()}
        self._waiters = {source: ring.reader(self._slot) for source, ring in self.rings.items()}

    # --- frames ---------------------------------------------------------------------------

    def published_sample(self, source: Source) -> int:
        """Sample position up to which the source's frames are published."""
        return self.rings[source].published * HOP

    async def frames(self, source: Source, start: int, end: int | None = None) -> np.ndarray:
        """Frames ``(n, bins)`` of samples ``[start, end)``, as whisper computes them for that
        audio alone (``(end - start) // HOP`` frames); ``end=None``: all published so far.
        Waits for the mel actor when the last frames are not published yet."""
        self._passed = True
        ring = self.rings[source]
        first = start // HOP
        count = (end - start) // HOP if end is not None else ring.published - first
        await self._waiters[source].wait(timeout=FRAMES_TIMEOUT_S, until=first + count)
        count = min(count, ring.published - first)
        if count <= 0:
            return np.zeros((0, ring.spec.item_len), np.float32)
        batch = ring.get(first, count)
        kept = batch.data if batch is not None else np.zeros((0, ring.spec.item_len), np.float32)
        # The model fell more than a ring behind: the lost head reads as silence.
        gap = np.full((count - len(kept), ring.spec.item_len), SILENCE_LOG_MEL, np.float32)
        return np.concatenate((gap, kept))

    def hold(self, source: Source, sample: int | None) -> None:
        """Announce the first sample of ``source`` still needed (None: none): a fast replay
        waits for this actor rather than let the ring overwrite it."""
        self._waiters[source].hold(None if sample is None else sample // HOP)

    def captured_ns(self, source: Source, start: int, frames_read: int) -> int:
        """When the audio of the last of ``frames_read`` frames from sample ``start`` (what
        ``frames`` gave a pass) was captured: the stamp the mel actor copied from the PCM
        ring; 0 once it has been overwritten."""
        batch = self.rings[source].get(start // HOP + max(0, frames_read - 1), 1)
        return int(batch.time_ns[0]) if batch is not None else 0

    def idle(self) -> None:
        """Call when the actor has nothing to do: once after passes ran, the heap's free pages
        go back to the system. A pass frees tensors of every utterance's size, and glibc keeps
        what lies between live blocks (``bench model_memory``: base over 120 utterances of
        1-15 s, windows rounded to 2 s, +5.9 % RSS without this, +0.3 % with it). Done when
        idle, no utterance waits for it."""
        if self._passed:
            give_back_free_heap()
        self._passed = False

    def close(self) -> None:
        for waiter in self._waiters.values():
            waiter.release_slot()
        for ring in self.rings.values():
            ring.close()
