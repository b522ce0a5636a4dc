"""What to run for a config: the rings and the actors, decided before anything starts.

Why a separate step: every error a user can fix in the config (unknown device, no audio
server) surfaces here, in the foreground process, as one message before any actor spawns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import msgspec

from earwig import model_store
from earwig.actors.capture import CaptureParams
from earwig.actors.capture_devices import resolve
from earwig.actors.dictation import DictationParams
from earwig.actors.dictation_desktops import DesktopChoice
from earwig.actors.mel import MelParams, MelSource
from earwig.actors.model_session import ModelParams
from earwig.actors.runtime import ActorSpec, spec_for
from earwig.audio import linear_echo
from earwig.audio.echo import FRAME
from earwig.audio.log_mel import HOP, bins_for_model
from earwig.compute import final_model, torch_device
from earwig.config import SAMPLE_RATE, Config, ModelsConfig
from earwig.decoding import served
from earwig.errors import EarwigError
from earwig.messages import SOURCES, Source
from earwig.shm import RingSpec


@dataclass(frozen=True)
class EchoDecision:
    """Whether the mic's echo is cancelled; ``problem``: why not, where it was asked for."""

    on: bool
    problem: str = ""


@dataclass(frozen=True)
class Plan:
    rings: list[RingSpec]
    actors: list[ActorSpec]
    sources: list[Source]
    #: Enabled sources left out because their device cannot be had (only when devices are
    #: optional: the monitor shows why in the source's column and runs the others).
    unavailable: dict[Source, EarwigError] = field(default_factory=dict)
    echo: EchoDecision = EchoDecision(on=False)


def with_what_can_run(plan: Plan, warn: Callable[[str], None]) -> Plan:
    """A plan built with devices optional, for a command that goes on with the sources it
    can have (a replayed mic and no audio server for the speakers): one warning per source
    left out, saying why; when none can run, the first one's error."""
    if not plan.sources and plan.unavailable:
        raise next(iter(plan.unavailable.values()))
    for source, error in plan.unavailable.items():
        warn(f"{source} left out: {error}")
    if plan.echo.problem:
        warn(plan.echo.problem)
    return plan


def echo_cancelled(config: Config, sources: list[Source]) -> EchoDecision:
    """Echo cancellation needs the speakers' signal beside the mic's, on one clock, in
    the same room: two live devices, or (asked for) two replays at real-time pace. Where it
    was asked for (on, or auto with live devices) and cannot be, ``problem`` says why; the
    run goes on without it."""
    mode = config.echo.cancel
    if mode == "off":
        return EchoDecision(on=False)
    replays = [bool(config.source(source).replay) for source in SOURCES]

    def cannot(why: str, fix: str) -> EchoDecision:
        return EchoDecision(on=False, problem=f"echo.cancel = {mode}, but {why}: echo is not cancelled ({fix})")

    if "mic" not in sources or "speakers" not in sources:
        missing = "the speakers are" if "mic" in sources else "the mic is"
        return cannot(f"{missing} not captured", "it needs both sources") if mode == "on" else EchoDecision(on=False)
    if replays[0] != replays[1]:
        if mode == "auto":
            return EchoDecision(on=False)
        return cannot("one source is a replay and the other a live device (they share no room)",
                      "replay both, or capture both")
    if replays[0] and mode == "auto":
        return EchoDecision(on=False)
    if replays[0] and not (config.mic.realtime and config.speakers.realtime):
        return cannot("a replay as fast as the pipeline goes has no clock to align the speakers by",
                      "replay both in real time")
    if config.block_samples % FRAME:
        return cannot(f"block_samples = {config.block_samples} is not a multiple of {FRAME} (10 ms)",
                      f"set block_samples to a multiple of {FRAME}")
    if linear_echo.library_missing():
        return cannot("the speexdsp library is not installed",
                      "install it: apt install libspeexdsp1, dnf install speexdsp or brew install speexdsp")
    return EchoDecision(on=True)


def pcm_ring_name(prefix: str, source: Source) -> str:
    return f"{prefix}pcm-{source}"


def session_audio_rings(plan: Plan, prefix: str) -> dict[Source, str]:
    """The PCM ring of each source the plan captures: the session's audio."""
    return {source: pcm_ring_name(prefix, source) for source in plan.sources}


def mel_ring_name(prefix: str, source: Source, bins: int) -> str:
    return f"{prefix}mel{bins}-{source}"


def ring_capacity(seconds: float, item_len: int) -> int:
    """Enough whole items for ``seconds`` of 16 kHz audio, rounded up to a power of two."""
    items = max(2, int(seconds * SAMPLE_RATE / item_len))
    return 1 << (items - 1).bit_length()


def capture_plan(config: Config, prefix: str, devices_optional: bool = False) -> Plan:
    rings, actors, sources, unavailable = [], [], [], {}
    for source in SOURCES:
        settings = config.source(source)
        if not settings.enabled:
            continue
        try:
            device = None if settings.replay else resolve(source, settings.device)
        except EarwigError as error:
            if not devices_optional:
                raise
            unavailable[source] = error
            continue
        ring = RingSpec(pcm_ring_name(prefix, source),
                        ring_capacity(config.ring_seconds, config.block_samples),
                        config.block_samples)
        params = CaptureParams(source=source, ring=ring.name, device=device,
                               replay=settings.replay, realtime=settings.realtime)
        rings.append(ring)
        actors.append(spec_for(f"capture-{source}", "earwig.actors.capture", params))
        sources.append(source)
    if not sources and not unavailable:
        raise EarwigError("both sources are disabled", "enable --mic or --speakers")
    return Plan(rings, actors, sources, unavailable)


def preview_model(models: ModelsConfig) -> str:
    """The preview model; an English-only one gives way to its multilingual twin
    ("tiny.en" -> "tiny") when the language may not be English and the twin is here.
    Without it the English-only model stays, and the preview shows no partial text for
    speech in another language (``actors/preview``), rather than English-sounding noise."""
    twin = models.preview[:-3]
    if models.preview.endswith(".en") and (models.language != "en" or models.task == "translate") \
            and model_store.offline(twin):
        return twin
    return models.preview


def reread_below_db(models: ModelsConfig) -> float:
    """Where the live final pass reads a doubted utterance again by beam search: under
    ``models.reread_noisy_db`` of loud over quiet, or everywhere with ``models.reread_live``.
    Measured on bench wer's live subset (five recordings, 150 s, base, fast replays): every
    doubted utterance read again took white noise at 10 dB SNR from 0.452 to 0.346 WER (its
    utterances span 6-17 dB) and clean speech from 0.172 to 0.155, with 8 utterances read
    twice of each copy; under 18 dB, noise gains all of it and clean speech 0.172 -> 0.166,
    while the test suite's espeak-ng voices, doubted in 11 of 18 sentences but over digital
    silence, are not read twice."""
    return math.inf if models.reread_live else models.reread_noisy_db


def retry_model(models: ModelsConfig) -> str:
    """The model a line is read again with: ``models.retry``; "auto": the next larger model
    this machine has that reads the language (any, for English), else the final model."""
    final = final_model(models.final)
    if models.retry != "auto":
        return models.retry
    english = models.language == "en" and models.task == "transcribe"
    return model_store.next_larger_model(final, english) or final


def mel_bins(config: Config) -> list[int]:
    """The bin counts the configured models read: one frame ring per count and source."""
    models = (preview_model(config.models), final_model(config.models.final))
    return sorted({bins_for_model(model) for model in models})


def listen_plan(config: Config, prefix: str, devices_optional: bool = False) -> Plan:
    """Capture, plus the mel actor: frames for the models and speech events from the VAD."""
    torch_device(config.device)  # a device that cannot work is an error before anything starts
    plan = capture_plan(config, prefix, devices_optional)
    if not plan.sources:
        return plan
    rings, sources = list(plan.rings), []
    echo = echo_cancelled(config, plan.sources)
    for source in plan.sources:
        frame_rings = {bins: RingSpec(mel_ring_name(prefix, source, bins),
                                      ring_capacity(config.ring_seconds, HOP), bins)
                       for bins in mel_bins(config)}
        rings += frame_rings.values()
        sources.append(MelSource(source, pcm_ring_name(prefix, source),
                                 {bins: ring.name for bins, ring in frame_rings.items()},
                                 replay=bool(config.source(source).replay),
                                 paced=bool(config.source(source).replay) and not config.source(source).realtime,
                                 echo_reference=pcm_ring_name(prefix, "speakers") if echo.on and source == "mic"
                                 else ""))
    mel = spec_for("mel", "earwig.actors.mel", MelParams(tuple(sources), config.vad, config.device))
    return replace(plan, rings=rings, actors=[*plan.actors, mel], echo=echo)


#: The preview's CPU threads: one, so a preview still running when the final pass starts
#: (at the VAD's pause) leaves it the other cores.
PREVIEW_THREADS = 1
#: The preview is best-effort: a final pass that shared the cores with it took twice as
#: long (base, 2 cores: 0.58 s alone, 1.25 s beside a busy one-thread process). At nice
#: 10 the kernel gives the final pass the cores whenever it runs.
PREVIEW_NICENESS = 10


def transcription_plan(config: Config, prefix: str, roles: tuple[str, ...] = ("preview", "final"),
                       devices_optional: bool = False) -> Plan:
    """Capture and mel, plus the model actors: partial text (preview) and kept text (final).

    The models' names and languages are checked here (no weights are loaded: that waits
    for the first speech), and a transcription server (``server.url``) is asked what it
    serves, so a typo is one line before anything starts.
    """
    models = config.models
    for role in roles:  # settings first: a bad model is named whether or not a device is there
        check_model(preview_model(models) if role == "preview" else final_model(models.final), models, role)
    if "final" in roles:
        try:
            check_model(retry_model(models), models, "retry")
        except EarwigError as error:
            raise EarwigError(f"models.retry: {error.problem}", error.fix) from None
    server = served.checked(config.server) if "final" in roles and config.server.url else None
    plan = listen_plan(config, prefix, devices_optional)
    if not plan.sources:
        return plan
    frame_rings = {source: {bins: mel_ring_name(prefix, source, bins) for bins in mel_bins(config)}
                   for source in plan.sources}
    actors = list(plan.actors)
    for role in roles:
        model = preview_model(models) if role == "preview" else final_model(models.final)
        params = ModelParams(role=role, model=model, device=config.device, frame_rings=frame_rings,
                             language=models.language, task=models.task,
                             initial_prompt=models.initial_prompt,
                             interval_s=models.preview_interval_ms / 1000,
                             threads=PREVIEW_THREADS if role == "preview" else 0,
                             max_window=int(config.vad.max_utterance_s * SAMPLE_RATE),
                             retry_model=retry_model(models) if role == "final" else "",
                             pcm_rings={source: pcm_ring_name(prefix, source) for source in plan.sources}
                             if role == "final" else {},
                             server=server if role == "final" else None,
                             reread_below_db=reread_below_db(models) if role == "final" else 0.0)
        # The final actor stops last: after the mel actor has closed the utterance in progress.
        actors.append(spec_for(role, f"earwig.actors.{role}", params, idle_evict_s=models.idle_evict_s,
                               niceness=PREVIEW_NICENESS if role == "preview" else 0,
                               shutdown_step=int(role == "final")))
    return replace(plan, actors=actors)


def check_model(model: str, models: ModelsConfig, role: str = "final") -> None:
    """The model can be had, and can do what the config asks (a preview model may read
    English only: its partial text is then shown for English speech only)."""
    model_store.checkpoint_path(model, fetch=False)
    english_only = model.endswith(".en") and role != "preview"
    if english_only and models.language != "en":
        raise EarwigError(f"model {model} reads English only, but models.language is {models.language!r}",
                          f'use the multilingual {model[:-3]}, or set models.language = "en"')
    if english_only and models.task == "translate":
        raise EarwigError(f"model {model} cannot translate: it reads English only",
                          f"use the multilingual {model[:-3]} to translate")


def dictation_plan(config: Config, prefix: str, socket: str, desktop: DesktopChoice) -> Plan:
    """The mic's transcription (no speakers) plus the dictation actor. ``desktop``: where the
    hotkey is read and the text typed (``actors/dictation_desktops``)."""
    if not config.mic.enabled:
        raise EarwigError("dictation needs the mic, and it is disabled", "drop --no-mic (or mic.enabled = false)")
    config = msgspec.structs.replace(config, speakers=msgspec.structs.replace(config.speakers, enabled=False))
    plan = transcription_plan(config, prefix)
    if not config.dictation.transcribe_outside:  # the mic hears the room: keep only what is dictated
        plan = replace(plan, actors=[_only_dictated(actor) if actor.name == "mel" else actor for actor in plan.actors])
    return with_dictation(plan, config, prefix, socket, desktop)


def _only_dictated(mel: ActorSpec) -> ActorSpec:
    sources = tuple(replace(source, only_dictated=True) for source in mel.params.sources)
    return replace(mel, params=replace(mel.params, sources=sources))


def with_dictation(plan: Plan, config: Config, prefix: str, socket: str, desktop: DesktopChoice) -> Plan:
    """``plan`` (which transcribes the mic) plus the dictation actor. It stops last: a
    session ended mid-dictation (Ctrl-C) still has its text, which the mel actor closes
    and the final actor answers as they stop, delivered and printed."""
    dictation = spec_for("dictation", "earwig.actors.dictation",
                         DictationParams(config.dictation, pcm_ring_name(prefix, "mic"), socket, desktop),
                         shutdown_step=2)
    return replace(plan, actors=[*plan.actors, dictation])
