"""Every control and event message in earwig, as one tagged union of msgspec Structs.

Why one module: the supervisor routes by type, the TUI and the session log read the same
events, and a reader of any actor should find every message it may see in one place.
Bulk data never travels here (msgspec has no numpy support, and pipes are slow for it):
messages refer to audio by absolute sample positions into the rings instead.

Positions: ``start``/``end`` are sample indices at 16 kHz since the source started, end
exclusive. Times (``*_ns``) are ``time.monotonic_ns()``, one clock for every process on a
machine.
"""

from __future__ import annotations

from typing import Literal, Union

import msgspec

Source = Literal["mic", "speakers"]
SOURCES: tuple[Source, ...] = ("mic", "speakers")


class Message(msgspec.Struct, tag_field="type", frozen=True, kw_only=True):
    """Base of every message; the class name is the tag on the wire."""


# --- control: supervisor -> actor -------------------------------------------------------


class PauseSource(Message):
    """The user paused (or resumed) a source. A device keeps running and its ring takes
    silence, so an utterance in progress ends and gets its Final; a replay holds its place
    in the file, like a paused player."""

    source: Source
    paused: bool


class PlayedBack(Message):
    """The user played a line's audio again (the monitor's ``enter``) through the default
    output: ``source`` may hear it between its positions ``start`` and ``end``, and a Final
    of that source within them is earwig's own playback (marked ``echo``), not new speech."""

    source: Source
    start: int
    end: int


class Retry(Message):
    """The user asked for a line (a Final of ``source`` over ``[start, end)``) to be
    transcribed again, more carefully: beam search, ``prompt`` (the text said before it) as
    its context, and ``models.retry``. The final actor answers with a Final marked
    ``revised``, or an ActorFailed that says why it cannot (the line's audio is gone).
    ``audio``: the file that holds the source's audio by sample position (the session's
    kept audio), read when the ring no longer holds the line; "" for none."""

    source: Source
    start: int
    end: int
    prompt: str = ""
    audio: str = ""


class Shutdown(Message):
    """Finish what is in flight, release resources, exit."""


# --- life cycle: actor -> supervisor -----------------------------------------------------


class Heartbeat(Message):
    actor: str
    sent_ns: int


class ActorReady(Message):
    actor: str
    pid: int


class ActorFailed(Message):
    """An actor cannot go on. ``fix`` says what the user can do about it."""

    actor: str
    error: str
    fix: str = ""
    fatal: bool = True


# --- audio events ------------------------------------------------------------------------


class Level(Message):
    """Loudness of the last ~50 ms of a source, for meters."""

    source: Source
    end: int
    rms_db: float
    peak_db: float
    clipped: bool

    def meter_cells(self, width: int) -> int:
        """Cells of a ``width``-cell meter that spans -60 dB (empty) to 0 dB (full)."""
        return int(max(0.0, min(1.0, (self.rms_db + 60) / 60)) * width)


class SourceEnded(Message):
    """A replayed file has been written to its ring up to ``end`` (exclusive)."""

    source: Source
    end: int


class SourceState(Message):
    """A device went away (``connected`` false: unplugged, its server restarted, or it fell
    silent) or came back. Meanwhile its ring takes silence, so both sources keep one time
    line and an utterance in progress ends and gets its Final. ``detail`` says why."""

    source: Source
    connected: bool
    detail: str = ""


class SpeechStart(Message):
    source: Source
    start: int


class SpeechPause(Message):
    """The end-of-speech hangover began: speech may have ended at ``end``.

    Why: the final model can start on ``[start, end)`` now and have the text ready when the
    SpeechEnd with the same ``start`` and ``end`` confirms it; if speech resumes, no
    SpeechEnd with that ``end`` comes and the early result is dropped.
    """

    source: Source
    start: int
    end: int


class SpeechResume(Message):
    """Speech went on at ``at`` after a SpeechPause: the utterance ``start`` is not over."""

    source: Source
    start: int
    at: int


class SpeechEnd(Message):
    """``cut``: the utterance reached ``max_utterance_s`` and goes on as a new one at ``end``.
    ``heard`` False: no SpeechStart came before it; a stretch the VAD heard no speech in,
    near speech it did hear and with sound in it, read all the same (``audio.unheard``)."""

    source: Source
    start: int
    end: int
    cut: bool = False
    heard: bool = True


# --- transcription -----------------------------------------------------------------------


class Word(msgspec.Struct, frozen=True):
    text: str
    start: int
    end: int
    probability: float


class Stamps(msgspec.Struct, frozen=True, kw_only=True):
    """When each stage handled a text's last audio, in path order: its stages are the
    differences (``earwig profile``). ``time.monotonic_ns()``, one clock for every process
    on the machine; 0 where not (yet) known. Delivery (drawn, typed) is stamped by whoever
    delivers: it happens after the message has left the pipeline."""

    #: The capture actor wrote the last sample of the text's last mel frame (its ring stamp).
    captured_ns: int = 0
    #: The model actor could start: for a Final, the VAD had said speech may be over (its
    #: SpeechPause or SpeechEnd arrived) and the audio was captured, whichever came later
    #: (a SpeechPause comes before the last ``pad_ms`` are); for a Partial, its tick came
    #: (it reads the frames there is and starts its pass at once).
    ready_ns: int = 0
    pass_start_ns: int = 0
    pass_end_ns: int = 0
    #: The model actor sent it (a Final once its SpeechEnd confirmed the speculative pass).
    published_ns: int = 0
    #: The supervisor had it from the actor's pipe.
    received_ns: int = 0


class Partial(Message):
    """Preview text of an utterance in progress: ``committed`` is never taken back."""

    source: Source
    start: int
    end: int
    committed: str
    tentative: str
    stamps: Stamps | None = None


class Final(Message):
    """The kept text of one utterance; ``start``/``end`` and the words' are sample positions."""

    source: Source
    start: int
    end: int
    text: str
    language: str
    words: list[Word] = []
    stamps: Stamps | None = None
    #: Sound earwig knows came from elsewhere: a mic Final that repeats what the speakers
    #: said over the same time (their sound in the microphone), or a speakers Final of a
    #: line earwig itself played back. Kept in the session log, never shown, typed or exported.
    echo: bool = False
    #: A retry's text (``Retry``), which replaces the earlier text of the same span: the
    #: session log appends it as a revision, the screen and ``earwig export`` show it.
    revised: bool = False
    #: Who wrote it where not the final actor's own model: a transcription server's model
    #: ("NAME at URL", ``server.url``); such a Final has no word times (the API gives none).
    model: str = ""
    #: False: it answers a stretch the VAD heard no speech in (``SpeechEnd.heard``): read once
    #: the next utterance began, not at the end of speech, so no end-of-speech timing counts it.
    heard: bool = True

    @property
    def readable(self) -> bool:
        """Text for a reader: it says something, and it is not sound from elsewhere
        (``echo``). What is shown, typed, exported, searched and read as context."""
        return bool(self.text) and not self.echo


class ServerState(Message):
    """The transcription server (``server.url``) now writes the kept text (``up``), or this
    machine's final model does because of ``problem``; ``model``: "NAME at URL"."""

    up: bool
    model: str
    problem: str = ""


class ModelState(Message):
    """Where a model actor's model stands. ``memory_bytes``: what loading it cost (GPU memory
    on CUDA, resident memory on the CPU). ``failed`` carries the error and its fix."""

    #: "retry": the final actor's second model, loaded for a retry where ``models.retry``
    #: is not the final model.
    role: Literal["preview", "final", "retry"]
    model: str
    state: Literal["evicted", "loading", "ready", "failed"]
    device: str = ""
    memory_bytes: int = 0
    load_s: float = 0.0
    error: str = ""
    fix: str = ""


class EchoState(Message):
    """The mic's echo canceller: whether the mic hears the speakers (``heard``), how late
    (``delay_ms``, capture clocks aligned), and the echo return loss enhancement reached
    while they play: AEC3's in what the VAD hears (``erle_db``), the linear filter's in
    what Whisper reads (``linear_erle_db``). ``speakers_offset``: a speakers position minus
    the mic position of the same instant, in samples (how the two sources' times line up).
    ``cleaned_from``: the mic position from which its echo is cancelled, once the mic was
    first heard hearing the speakers (0: not yet); what the mic took before is uncleaned."""

    heard: bool
    delay_ms: float | None = None
    erle_db: float | None = None
    linear_erle_db: float | None = None
    speakers_offset: int = 0
    cleaned_from: int = 0


class Stats(Message):
    """Counters an actor reports now and then (ring overruns, blocks written, ...)."""

    actor: str
    counters: dict[str, float]


# --- dictation ----------------------------------------------------------------------------


#: ``disable`` / ``enable``: the hotkey is ignored meanwhile (the monitor's d key).
#: ``retry``: transcribe the held text again (``Retry``) and hold the new text instead.
DictationAction = Literal["start", "stop", "toggle", "cancel", "status", "enable", "disable", "retry"]


class DictationCommand(Message):
    """What the user asks of dictation without the hotkey: the monitor's key, or
    ``earwig ctl`` over the control socket (which is answered with a DictationState)."""

    action: DictationAction


class DictationStart(Message):
    """Dictation began at mic sample ``start``. From there the mic's utterance is bounded by
    the key, not by the VAD's silence (the mel actor); the final model loads now, so it is
    warm when the key is released (the final actor, woken if it was evicted)."""

    start: int


class DictationStop(Message):
    """Dictation ended at mic sample ``end``. The mel actor closes the utterance there at
    once, without waiting for the VAD's hangover, and answers with a DictationSpan.
    ``cancel``: the text is not wanted (it is still transcribed and shown, never typed)."""

    start: int
    end: int
    cancel: bool = False


class DictationSpan(Message):
    """The mel actor closed the dictation ``[start, end)``: it published ``utterances``
    SpeechEnds inside it (0: no speech was heard), whose Finals make up the text."""

    start: int
    end: int
    utterances: int


DictationPhase = Literal["off", "ready", "listening", "transcribing", "delivered", "held", "failed"]


class DictationState(Message):
    """Where dictation stands. ``detail``: the hotkey when ready, the text when delivered,
    why the text was held (focus moved: it is on the clipboard instead), or the error."""

    state: DictationPhase
    detail: str = ""
    text: str = ""


AnyMessage = Union[
    PauseSource, PlayedBack, Retry, Shutdown, Heartbeat, ActorReady, ActorFailed, Level, SourceEnded, SourceState, SpeechStart,
    SpeechPause, SpeechResume, SpeechEnd,
    Partial, Final, ServerState, ModelState, EchoState, Stats,
    DictationCommand, DictationStart, DictationStop, DictationSpan, DictationState,
]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyMessage)


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes) -> AnyMessage:
    return _decoder.decode(data)
