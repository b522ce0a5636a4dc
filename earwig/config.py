"""Settings: one TOML file in the XDG config dir, decoded and validated by msgspec.

Why msgspec: the same library already types every message, and its errors carry the path
of the offending key (``$.mic.device``), which becomes the one line the user sees.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from earwig import paths
from earwig.errors import EarwigError
from earwig.messages import Source

SAMPLE_RATE = 16_000
#: The longest ring a session may ask for: an hour, 230 MB of float32 audio per source.
MAX_RING_S = 3600.0


def _require(prefix: str, checks: list[tuple[str, bool, str]]) -> None:
    """The first check that fails, as msgspec's error: one line that names the key (with its
    section's ``prefix``) and what it may be."""
    for key, ok, allowed in checks:
        if not ok:
            raise msgspec.ValidationError(f"{prefix}{key} must be {allowed}")


class SourceConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: Annotated[bool, Meta(description="Capture and transcribe this source.")] = True
    device: Annotated[str, Meta(description=
        "A name or index from `earwig devices`; empty: the default input (mic) or the "
        "monitor of the default output (speakers).")] = ""
    replay: Annotated[str, Meta(description=
        "Play this audio file into the source instead of capturing a device.")] = ""
    realtime: Annotated[bool, Meta(description=
        "Replay at real-time speed (False: as fast as the pipeline's slowest stage takes it).")] = True


class VadConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Silero VAD and how its probabilities become utterances (see earwig/audio/vad.py)."""

    threshold: Annotated[float, Meta(description=
        "Probability above which a 32 ms chunk is speech; speech ends below threshold - 0.15.")] = 0.5
    min_speech_ms: Annotated[int, Meta(description=
        "Speech shorter than this is ignored (clicks, coughs).")] = 250
    min_silence_ms: Annotated[int, Meta(description=
        "Silence that ends an utterance: the end-of-speech hangover.")] = 500
    lead_ms: Annotated[int, Meta(description=
        "Audio kept before the detected start: a word's onset comes before the VAD is sure "
        "(it costs no latency; it never reaches back into the previous utterance).")] = 300
    pad_ms: Annotated[int, Meta(description=
        "Audio kept after the detected end (a word's fading tail); the final pass waits for "
        "it, so it adds to end of speech -> Final.")] = 100
    max_utterance_s: Annotated[float, Meta(description=
        "Longer utterances are cut at their quietest point (Whisper reads 30 s at most).")] = 25.0
    read_unheard: Annotated[bool, Meta(description=
        "Live, also read the stretches near speech in which the VAD heard none but which have "
        "sound in them (a soft or distant second talker, speech under noise), as files are "
        "read; text there is kept only where the model is sure at once.")] = True

    def __post_init__(self) -> None:
        checks = [("threshold", 0.15 < self.threshold < 1.0, "between 0.15 and 1"),
                  ("min_speech_ms", 0 <= self.min_speech_ms <= 10_000, "between 0 and 10000"),
                  ("min_silence_ms", 32 <= self.min_silence_ms <= 10_000, "between 32 (one VAD chunk) and 10000"),
                  ("lead_ms", 0 <= self.lead_ms <= 1000, "between 0 and 1000"),
                  ("pad_ms", 0 <= self.pad_ms <= self.min_silence_ms, "between 0 and min_silence_ms"),
                  ("max_utterance_s", 10.0 <= self.max_utterance_s <= 29.0, "between 10 and 29")]
        _require("vad.", checks)

    def onset(self, start: int) -> int:
        """The first voiced sample of an utterance that a SpeechStart says begins at
        ``start`` (its ``lead_ms`` of lead-in before): where onset latency counts from."""
        return start + self.lead_ms * SAMPLE_RATE // 1000


class ModelsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Which Whisper models run, what they are told, and when they leave memory."""

    preview: Annotated[str, Meta(description=
        "The fast model that writes partial text while you speak (\"tiny\" when the language "
        "is not English and this is left at \"tiny.en\").")] = "tiny.en"
    final: Annotated[str, Meta(description=
        "The model that writes the kept text; \"auto\": large-v3-turbo on CUDA, base on CPU.")] = "auto"
    retry: Annotated[str, Meta(description=
        "The model that transcribes a line again when you ask (the monitor's r key, "
        "`earwig ctl retry`), with beam search; \"auto\": the next larger model this machine "
        "has, else the final model.")] = "auto"
    language: Annotated[str, Meta(description=
        "A language code (\"en\", \"de\", ...) or \"auto\" to detect it per utterance.")] = "en"
    task: Annotated[str, Meta(description=
        "\"transcribe\", or \"translate\" to write English text of any language.")] = "transcribe"
    initial_prompt: Annotated[str, Meta(description=
        "Text the final model reads as preceding context: names and words it should spell "
        "your way (\"Kubernetes, Anneliese, earwig\").")] = ""
    beam_size: Annotated[int, Meta(description=
        "Whisper's beam search width for files (`earwig transcribe`); 1 decodes greedily and "
        "reads a window again with beam 5 where the model doubts its words (measured on "
        "shared/audio/real with base: beam 5 everywhere the same WER, 1.9x the time).")] = 1
    reread_live: Annotated[bool, Meta(description=
        "Live, read every utterance the final model doubts (over a tenth of its words below even "
        "odds) again with beam search 5, as files always are: better text in noise, reverberation "
        "or under another talker, its Final later by about the decoding's time again.")] = False
    reread_noisy_db: Annotated[float, Meta(description=
        "Live, read a doubted utterance again with beam search 5 where its audio is noisy: its "
        "loud parts less than this many dB over its quiet ones (speech in a quiet room: 20-40; "
        "under noise at 10 dB SNR: 6-17). 0: only with reread_live.")] = 18.0
    preview_interval_ms: Annotated[int, Meta(description=
        "How often the preview re-reads the utterance in progress.")] = 250
    idle_evict_s: Annotated[float, Meta(description=
        "Seconds without speech after which the model processes end, freeing their memory.")] = 300.0

    def __post_init__(self) -> None:
        LANGUAGES, TO_LANGUAGE_CODE = _whisper_languages()
        self.language = TO_LANGUAGE_CODE.get(self.language.lower(), self.language.lower())
        checks = [("language", self.language == "auto" or self.language in LANGUAGES,
                   'a Whisper language code ("en", "de", ...) or "auto"'),
                  ("task", self.task in ("transcribe", "translate"), '"transcribe" or "translate"'),
                  ("beam_size", 1 <= self.beam_size <= 16, "between 1 and 16"),
                  ("preview_interval_ms", 50 <= self.preview_interval_ms <= 10_000, "between 50 and 10000"),
                  ("reread_noisy_db", 0 <= self.reread_noisy_db <= 60, "between 0 and 60"),
                  ("idle_evict_s", self.idle_evict_s > 0, "more than 0")]
        _require("models.", checks)


@functools.cache
def _whisper_languages() -> tuple[dict[str, str], dict[str, str]]:
    """Whisper's language tables (code -> name, name -> code), from its tokenizer module
    alone: imported the usual way, ``whisper.tokenizer`` imports the whisper package and
    with it PyTorch (1.2 s of CPU before any command could say that a setting is wrong)."""
    if "whisper.tokenizer" in sys.modules:
        tokenizer = sys.modules["whisper.tokenizer"]
    else:
        package = importlib.util.find_spec("whisper")
        spec = importlib.util.spec_from_file_location(
            "earwig._whisper_tokenizer", Path(package.submodule_search_locations[0]) / "tokenizer.py")
        tokenizer = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tokenizer)
    return tokenizer.LANGUAGES, tokenizer.TO_LANGUAGE_CODE


class MonitorConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The live screen (`earwig monitor`)."""

    frame_rate: Annotated[float, Meta(ge=1, le=60, description=
        "How many times a second the screen redraws (spectrograms, levels, partial text); "
        "at 10 the spectrogram scrolls one column a frame.")] = 10.0
    transcripts: Annotated[str, Meta(description=
        "Folder the save key writes transcripts to; empty: transcripts/ in the data dir "
        "($XDG_DATA_HOME/earwig, ~/.local/share/earwig).")] = ""
    profiling_panel: Annotated[bool, Meta(description=
        "Show the profiling panel from the start (the p key toggles it).")] = False
    niceness: Annotated[int, Meta(ge=0, le=19, description=
        "Added to the screen's nice value, not the pipeline's: on a busy machine the "
        "transcription gets the CPU first and the picture waits.")] = 10
    column_finals: Annotated[int, Meta(ge=10, le=100_000, description=
        "The Finals each text column keeps on screen; older ones leave the screen, never the "
        "session log or what the save key writes.")] = 2000


class EchoConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The speakers heard by the microphone (laptop speakers, no headphones)."""

    cancel: Annotated[Literal["auto", "on", "off"], Meta(description=
        "Take what the speakers play out of the mic (WebRTC AEC3, the speakers' capture as "
        "the reference): auto when both sources are live devices; on also for two "
        "real-time replays; off never.")] = "auto"


class DictationConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Hotkey dictation (`earwig dictate`): speak, and the text lands in the focused window."""

    hotkey: Annotated[str, Meta(description=
        "The global hotkey, in pynput's spelling: modifiers and keys in <>, joined by +, "
        "e.g. <ctrl>+<alt>+<space> or <cmd>+d.")] = "<ctrl>+<alt>+<space>"
    mode: Annotated[Literal["hold", "toggle"], Meta(description=
        "hold: speak while the hotkey is down (push-to-talk); toggle: press once to start, "
        "again to stop.")] = "hold"
    delivery: Annotated[Literal["type", "paste"], Meta(description=
        "type: the text is typed as keystrokes; paste: it goes through the clipboard and "
        "ctrl+v, and the clipboard's text is put back after (for input-method editors).")] = "type"
    replacements: Annotated[dict[str, str], Meta(description=
        "Spoken phrases written as something else, e.g. {\"new line\" = \"\\n\"}; as a "
        "flag, a JSON object.")] = msgspec.field(
            default_factory=lambda: {"new line": "\n", "new paragraph": "\n\n"})
    join_within_s: Annotated[float, Meta(ge=0, description=
        "A dictation into the same window this soon after the last one continues its text: "
        "a space between, and no capital unless a sentence ended.")] = 60.0
    transcribe_outside: Annotated[bool, Meta(description=
        "`earwig dictate` also transcribes, and logs in the session log, what the mic hears "
        "outside a dictation; off, only what is said while dictating is transcribed or kept "
        "(the monitor transcribes everything either way: that is what it is for).")] = False
    type_without_focus_check: Annotated[bool, Meta(description=
        "On a Wayland desktop that does not say which window has the focus, type the "
        "text into whatever window has it when the text is ready; off, the text is held on the "
        "clipboard there, since it could land in a window that took the focus while you spoke.")] = False
    in_monitor: Annotated[bool, Meta(description=
        "The monitor runs dictation too (its hotkey works while the monitor is open; d turns "
        "it off and on), when there is an X display and no `earwig dictate` is running.")] = True


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A transcription server (the OpenAI API: vLLM, speaches, whisper.cpp's server) that
    writes the kept text in place of this machine's final model; this machine's model is
    the fallback (``decoding/served.py``)."""

    url: Annotated[str, Meta(description=
        "The server's API root, e.g. http://gpu-box:8000/v1; empty: the kept text is written on "
        "this machine only. Set, each utterance's audio is sent there.")] = ""
    model: Annotated[str, Meta(description=
        "The served model's name, as the server's /v1/models lists it (`earwig models` shows "
        "them); empty: the only model it serves.")] = ""
    api_key_env: Annotated[str, Meta(description=
        "The environment variable that holds the server's API key (the key itself never goes "
        "in a file or a flag, which others can read); empty: no key.")] = ""
    wait_s: Annotated[float, Meta(description=
        "How long the live text waits for the server before this machine's model reads the "
        "utterance too (the first text wins); 0: as long as a local pass of it takes, "
        "measured as the local model runs.")] = 0.0
    timeout_s: Annotated[float, Meta(description=
        "An answer slower than this is a failed request; the server is tried again later "
        "and this machine's model reads the audio meanwhile.")] = 30.0
    prompt: Annotated[bool, Meta(description=
        "Send the text said before each utterance as the prompt, as the local model reads "
        "it. Off by default: vLLM reads a prompt as plain text, not as Whisper's previous "
        "text, and on shared/audio/real it cost words (README, \"A bigger model on another machine\").")] = False

    def __post_init__(self) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        checks = [("url", not self.url or (parts.scheme in ("http", "https") and bool(parts.hostname)),
                   "an http:// or https:// address with a host, e.g. http://gpu-box:8000/v1"),
                  ("api_key_env", not self.api_key_env or self.api_key_env.isidentifier(),
                   "the name of an environment variable, e.g. EARWIG_SERVER_KEY"),
                  ("wait_s", 0 <= self.wait_s <= 600, "between 0 (a local pass's time) and 600"),
                  ("timeout_s", 0 < self.timeout_s <= 600, "between 0 and 600")]
        _require("server.", checks)


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    mic: SourceConfig = msgspec.field(default_factory=SourceConfig)
    speakers: SourceConfig = msgspec.field(default_factory=SourceConfig)
    ring_seconds: Annotated[float, Meta(description=
        "How much audio each PCM ring holds; a reader further behind than this loses audio.")] = 120.0
    block_samples: Annotated[int, Meta(description=
        "Samples per PCM ring item (160 = one 10 ms mel hop at 16 kHz).")] = 160
    device: Annotated[str, Meta(description=
        "Where mel frames and models run: \"auto\" (CUDA when PyTorch sees a GPU), \"cpu\", "
        "\"cuda:N\".")] = "auto"
    keep_audio: Annotated[bool, Meta(description=
        "Keep each source's audio as FLAC beside the session log (sample n of a Final's "
        "start/end is frame n of the file) after the session ends, to hear a line again with "
        "`earwig play`. The monitor keeps it while its session runs either way.")] = False
    vad: VadConfig = msgspec.field(default_factory=VadConfig)
    models: ModelsConfig = msgspec.field(default_factory=ModelsConfig)
    echo: EchoConfig = msgspec.field(default_factory=EchoConfig)
    monitor: MonitorConfig = msgspec.field(default_factory=MonitorConfig)
    dictation: DictationConfig = msgspec.field(default_factory=DictationConfig)
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)

    def __post_init__(self) -> None:
        longest = self.vad.max_utterance_s
        checks = [("ring_seconds", longest <= self.ring_seconds <= MAX_RING_S,
                   f"between vad.max_utterance_s ({longest:g}) and {MAX_RING_S:g}: an utterance must fit in "
                   "the ring, or its start is gone before the final model reads it"),
                  ("block_samples", 1 <= self.block_samples <= SAMPLE_RATE, f"between 1 and {SAMPLE_RATE} (one second)")]
        _require("", checks)

    def source(self, name: Source) -> SourceConfig:
        return getattr(self, name)


def default_path() -> Path:
    return paths.config_home() / "earwig" / "config.toml"


def load(path: Path | None = None) -> Config:
    """Read the config file; a missing default file means defaults, a missing named one is an error."""
    explicit = path is not None
    path = path or default_path()
    try:
        present = path.exists()
    except OSError as error:  # a folder on the way that this user may not enter
        raise EarwigError(f"cannot read config {path}: {error.strerror or error}",
                          "fix the permissions of its folder, or give a config you can read (--config FILE)") from None
    if not present:
        if explicit:
            raise EarwigError(f"config file {path} does not exist",
                              "check the path given to --config")
        return Config()
    try:
        text = path.read_bytes()
    except OSError as error:
        raise EarwigError(f"cannot read config {path}: {error.strerror or error}",
                          "give a TOML file you can read (--config FILE)") from None
    try:
        return msgspec.toml.decode(text, type=Config)
    except msgspec.ValidationError as error:
        raise EarwigError(f"config {path}: {error}",
                          "fix or remove that key; `earwig monitor --help` lists every setting as a flag") from None
    except msgspec.DecodeError as error:
        raise EarwigError(f"config {path} is not valid TOML: {error}", "fix the syntax") from None
