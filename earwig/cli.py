"""The ``earwig`` command line. Every failure a user can fix ends as one line and exit 2."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from earwig import config as config_module
from earwig import config_flags
from earwig.cli_sessions import (export_arguments, export_session, play_arguments, play_line, search_arguments,
                                 search_sessions)
from earwig.config import SAMPLE_RATE
from earwig.errors import EarwigError
from earwig.messages import (SOURCES, ActorFailed, DictationState, Final, Level, Partial, SourceState, SpeechEnd,
                             SpeechStart)

USER_ERROR_EXIT = 2


def _config_from(args: argparse.Namespace) -> config_module.Config:
    """The command's settings. Each command reads them first, before it imports what runs
    the session (PyTorch among it: 2 s of CPU), so that a bad setting is one line at once."""
    return config_flags.apply(config_module.load(args.config), args)


def _replays_checked(config: config_module.Config) -> None:
    """A replayed file that cannot be read is one line before the session starts, as ``earwig
    transcribe`` says it, not a source's failure once the pipeline is up (its first block is
    decoded: a damaged file fails here too)."""
    from earwig.audio.files import audio_stream

    for source in SOURCES:
        settings = config.source(source)
        if settings.enabled and settings.replay:
            next(audio_stream(settings.replay).blocks, None)


def _warn(problem: str) -> None:
    print(f"earwig: {problem}", file=sys.stderr, flush=True)


def _warn_failure(failure: ActorFailed) -> None:
    """A failure that does not end the run (an actor restarting, the log full): said."""
    _warn(f"{failure.error} ({failure.fix})" if failure.fix else failure.error)


def _devices(args: argparse.Namespace) -> int:
    from earwig import compute
    from earwig.actors.capture_devices import NO_SERVER_FIX, echo_between, list_devices, resolve
    from earwig.actors.dictation_desktops import session_desktop

    devices = list_devices()
    for title, loopback in (("Microphones and other inputs", False),
                            ("Loopback (what the speakers play)", True)):
        print(f"{title}:")
        chosen = [d for d in devices if d.is_loopback == loopback]
        for d in chosen:
            mark = "*" if d.is_default else " "
            print(f" {mark} {d.name:<32} {d.description:<34} {d.samplerate} Hz, {d.channels} ch")
        if not chosen:
            print("    (none)")
    if not devices:
        print(f"No audio server or input device: {NO_SERVER_FIX}.")
    print("  * = used when no --mic/--speakers is given")
    try:
        print(f"Echo: {echo_between(resolve('mic', ''), resolve('speakers', ''))}")
    except EarwigError:
        pass  # no default pair: nothing to say of one
    print(f"Compute device: {compute.describe()}")
    desktop = session_desktop(config_module.load(getattr(args, "config", None)).dictation.hotkey)
    print(f"Dictation: {desktop.describe() if desktop.kind else desktop.problem}")
    return 0


class _MeterView:
    """What ``earwig meter`` shows: each source's level, whether it is speech, each utterance."""

    def __init__(self, sources: list[str], interactive: bool) -> None:
        self.levels: dict[str, Level | None] = {s: None for s in sources}
        self.speaking: set[str] = set()
        self.interactive = interactive

    def handle(self, message) -> None:
        if isinstance(message, Level):
            self.levels[message.source] = message
        elif isinstance(message, SpeechStart):
            self.speaking.add(message.source)
        elif isinstance(message, SpeechEnd):
            self.speaking.discard(message.source)
            cut = " (cut: continues)" if message.cut else ""
            kind = "speech" if message.heard else "sound near speech, read too"
            self._event(f"{message.source:>8} {kind} {message.start / SAMPLE_RATE:7.2f} - "
                        f"{message.end / SAMPLE_RATE:7.2f} s{cut}")
        elif isinstance(message, SourceState):
            self._event(f"{message.source:>8} {'reconnected' if message.connected else 'disconnected'}: "
                        f"{message.detail}")
        elif isinstance(message, ActorFailed) and not message.fatal:
            _warn_failure(message)

    def _event(self, text: str) -> None:
        """A line of its own above the meter line (which it first blanks on a terminal)."""
        print(f"{' ' * 100}\r" if self.interactive else "", end="")
        print(text, flush=True)

    def print_line(self) -> None:
        print(self.line(), end="\r" if self.interactive else "\n", flush=True)

    def line(self) -> str:
        parts = []
        for source, level in self.levels.items():
            if level is None:
                parts.append(f"{source:>8} {'(waiting)':<42}")
                continue
            filled = level.meter_cells(20)
            clip = "CLIP" if level.clipped else ""
            speech = "speech" if source in self.speaking else ""
            parts.append(f"{source:>8} {'#' * filled:<20} {level.rms_db:6.1f} dB {clip:<4} {speech:<6}")
        return "  ".join(parts)


async def _meter(args: argparse.Namespace) -> int:
    config = _config_from(args)
    _replays_checked(config)
    from earwig.shm import segments
    from earwig.supervisor.following import RunEnd, drain, follow
    from earwig.supervisor.plan import listen_plan, with_what_can_run
    from earwig.supervisor.stop_signals import StopSignals
    from earwig.supervisor.supervisor import Supervisor

    plan = with_what_can_run(listen_plan(config, segments.run_prefix(), devices_optional=True), _warn)
    view = _MeterView(plan.sources, sys.stdout.isatty())
    end = RunEnd(replays_only=all(config.source(s).replay for s in plan.sources), finals=False)
    stop = asyncio.Event()
    with StopSignals(stop):
        async with Supervisor(plan.rings, plan.actors) as supervisor:
            events = supervisor.subscribe()
            await follow(supervisor, events, view.handle, stop, end, seconds=args.seconds or 0.0,
                         tick=view.print_line, tick_every_s=0.1 if view.interactive else 1.0)
            drain(events, view.handle)  # every file's last speech reported
    if view.interactive:
        print()
    if end.failure:
        raise EarwigError(end.failure.error, end.failure.fix)
    return 0


async def _monitor(args: argparse.Namespace) -> int:
    config = _config_from(args)
    _replays_checked(config)
    from earwig.shm import segments
    from earwig.supervisor.plan import transcription_plan
    from earwig.supervisor.stop_signals import StopSignals
    from earwig.tui.app import MonitorApp

    transcription_plan(config, segments.run_prefix(), devices_optional=True)  # bad settings: one line, before the screen opens
    app = MonitorApp(config)
    stopped = asyncio.Event()

    async def quit_when_stopped() -> None:
        """A stop signal ends the session as q does: the Finals owed are written first."""
        await stopped.wait()
        await app.action_quit()

    with StopSignals(stopped):
        quitting = asyncio.create_task(quit_when_stopped())
        await app.run_async()
        quitting.cancel()
    return app.return_code or 0


async def _dictate(args: argparse.Namespace) -> int:
    config = _config_from(args)
    _replays_checked(config)
    from earwig import paths
    from earwig.actors import dictation_control
    from earwig.actors.dictation_desktops import session_desktop
    from earwig.actors.dictation_keys import parse
    from earwig.session.keeper import Keeping, SessionKeeper
    from earwig.session.log import new_session_path
    from earwig.shm import segments
    from earwig.supervisor.following import RunEnd, drain, follow
    from earwig.supervisor.plan import dictation_plan, session_audio_rings
    from earwig.supervisor.stop_signals import StopSignals
    from earwig.supervisor.supervisor import Supervisor

    desktop = session_desktop(config.dictation.hotkey, config.dictation.type_without_focus_check)
    if desktop.hotkey == "pynput":
        parse(config.dictation.hotkey)
    if desktop.kind:
        print(f"earwig dictate: {desktop.describe()}", file=sys.stderr)
    if desktop.problem:
        print(f"earwig dictate: {desktop.problem}.", file=sys.stderr)
    path = dictation_control.socket_path()
    dictation_control.ensure_free(path)
    prefix = segments.run_prefix()
    plan = dictation_plan(config, prefix, str(path), desktop)
    view = _DictationView(sys.stderr.isatty())
    keeping = Keeping(log=new_session_path(), audio=session_audio_rings(plan, prefix) if config.keep_audio else {})
    end, stop = RunEnd(replays_only=False), asyncio.Event()
    with StopSignals(stop):
        async with Supervisor(plan.rings, plan.actors, log_path=paths.fresh_log("dictate.log"),
                              keeper=SessionKeeper(keeping)) as supervisor:
            events = supervisor.subscribe()
            await follow(supervisor, events, view.handle, stop, end)
    drain(events, view.handle)  # the dictation in progress at the end: its text still prints
    if end.failure:
        raise EarwigError(end.failure.error, end.failure.fix)
    return 0


class _DictationView:
    """What ``earwig dictate`` prints: its state and the partial text on stderr, each
    dictation's text on stdout (one line each, for a pipe)."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive
        self.listening = False

    def handle(self, message) -> None:
        if isinstance(message, DictationState):
            self._state(message)
        elif isinstance(message, Partial) and message.source == "mic" and self.listening:
            text = f"{message.committed} {message.tentative}".strip()
            if self.interactive:
                print(f"\r\033[K... {text[-100:]}", end="", file=sys.stderr, flush=True)
            else:
                print(f"... {text}", file=sys.stderr, flush=True)
        elif isinstance(message, ActorFailed) and not message.fatal:
            _warn_failure(message)

    def _state(self, state: DictationState) -> None:
        self.listening = state.state == "listening"
        if self.interactive:
            print("\r\033[K", end="", file=sys.stderr)
        line = f"earwig dictate: {state.state}" + (f": {state.detail}" if state.detail else "")
        if state.state == "ready" and state.detail:
            line += "; `earwig ctl toggle` works too; Ctrl-C quits"
        print(line, file=sys.stderr, flush=True)
        if state.text:
            print(state.text, flush=True)


def _ctl(args: argparse.Namespace) -> int:
    from earwig.actors import dictation_control

    state = dictation_control.request(args.action)
    if state.state == "failed":
        raise EarwigError(state.detail, "see `earwig dictate`'s output")
    print(state.state + (f": {state.detail}" if state.detail else ""))
    if state.text:
        print(state.text)
    return 0


def _final_line(final: Final, as_json: bool, source: str) -> str:
    if as_json:
        return json.dumps({
            "source": source, "start": round(final.start / SAMPLE_RATE, 3),
            "end": round(final.end / SAMPLE_RATE, 3), "text": final.text, "language": final.language,
            "model": final.model, "words": [{"word": w.text, "start": round(w.start / SAMPLE_RATE, 3),
                       "end": round(w.end / SAMPLE_RATE, 3)} for w in final.words]},
            ensure_ascii=False)
    return f"[{_clock(final.start)} -> {_clock(final.end)}] {final.text}"


def _clock(sample: int) -> str:
    minutes, seconds = divmod(sample / SAMPLE_RATE, 60)
    return f"{int(minutes):02d}:{seconds:05.2f}"


def _transcribe(args: argparse.Namespace) -> int:
    from earwig.audio.files import require_file

    config = _config_from(args)
    for path in args.files:
        require_file(path)  # every file checked before the first one is transcribed
    from earwig.compute import final_model, torch_device
    from earwig.decoding.files import transcribe_files
    from earwig.supervisor.plan import check_model

    check_model(final_model(config.models.final), config.models)  # the server's fallback too
    torch_device(config.device)
    if config.server.url:
        import msgspec

        from earwig.decoding import served

        config = msgspec.structs.replace(config, server=served.checked(config.server))

    begun: set[str] = set()

    def show(path: str, finals: list[Final]) -> None:
        if path not in begun:
            begun.add(path)
            if len(args.files) > 1 and not args.json:
                print(f"{chr(10) if path != args.files[0] else ''}==> {path} <==", flush=True)
        for final in finals:
            if final.text:
                print(_final_line(final, args.json, path), flush=True)

    transcribe_files(config, args.files, show, warn=_warn, progress=_Progress(sys.stderr.isatty()))
    return 0


class _Progress:
    """How far a long file is, on stderr (lines go to stdout as they are done): a file of
    more than ``LONG_S`` says so every ``EVERY_S`` (in place on a terminal)."""

    LONG_S = 300.0
    EVERY_S = 10.0

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive
        self._next = time.monotonic() + self.EVERY_S

    def __call__(self, path: str, done_s: float, total_s: float | None) -> None:
        if total_s is None or total_s < self.LONG_S or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.EVERY_S
        line = f"earwig: {path}: {_clock(round(done_s * SAMPLE_RATE))} of {_clock(round(total_s * SAMPLE_RATE))} " \
               f"transcribed ({100 * done_s / total_s:.0f}%)"
        print(f"\r\033[K{line}" if self.interactive else line, end="" if self.interactive else "\n",
              file=sys.stderr, flush=True)


async def _profile(args: argparse.Namespace) -> int:
    config = _config_from(args)
    _replays_checked(config)
    from earwig.profiling import profile_plot, profile_report, profile_run, profile_trace

    out = args.out or Path(f"earwig-profile-{datetime.now():%Y%m%d-%H%M%S}")
    made = not out.exists()
    try:  # before the run: a folder it cannot write is found before the user has spoken
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EarwigError(f"cannot make the profile folder {out}: {error.strerror}", "give another with --out DIR")
    try:
        recording = await profile_run.record(config, args.seconds, warn=_warn)
    except BaseException:
        if made and not any(out.iterdir()):
            out.rmdir()  # a run that never started leaves no empty folder behind
        raise
    report = profile_report.build(recording)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "trace.json").write_text(json.dumps(profile_trace.build(recording)))
    profile_plot.write(report, out / "latency.png")
    print("\n".join(profile_report.lines(report)))
    print(f"\nWrote {out / 'report.json'}, {out / 'trace.json'} (open it in ui.perfetto.dev) and "
          f"{out / 'latency.png'}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from earwig import model_store

    if args.action in ("import", "export") and not args.directory:
        raise EarwigError(f"models {args.action} needs a DIRECTORY",
                          "earwig models import DIR [--name NAME]" if args.action == "import"
                          else "earwig models export DIR --name MODEL")
    if args.action == "export":
        from earwig.model_export import export

        name = args.name or "base"
        print(f"exported {name} for a server: {export(name, Path(args.directory).expanduser())}")
        return 0
    if args.action == "import":
        directory = Path(args.directory).expanduser()
        if not directory.is_dir():
            raise EarwigError(f"{directory} is not a directory",
                              "give the folder that holds model.bin and config.json")
        name = args.name or directory.name
        path = model_store.import_directory(directory, name)
        print(f"imported {directory} as {name!r}: {path}")
        return 0
    rows = model_store.available()
    width = max(len(row.name) for row in rows)
    for row in rows:
        print(f" {'*' if row.ready else ' '} {row.name:<{width}}  {row.where}")
    print("  * = usable without the internet")
    server = _config_from(args).server
    if server.url:
        from earwig.decoding.served import ServerFailed, served_models

        try:
            names = served_models(server)
        except ServerFailed as failed:
            print(f"server {server.url}: {failed.problem}")
            return 1
        print(f"server {server.url} serves: {', '.join(names) or 'nothing'}"
              + (f" (server.model: {server.model})" if server.model else ""))
    return 0


@dataclass(frozen=True)
class Command:
    """One subcommand: what runs it, its own arguments, and which settings are its flags."""

    name: str
    run: Callable[[argparse.Namespace], int | Coroutine[Any, Any, int]]
    help: str
    description: str | None = None
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    #: The config sections whose every key is a flag ("": the keys outside any section);
    #: None: all of them; empty: the command reads no config.
    sections: frozenset[str] | None = frozenset()
    #: Keys of those sections that mean nothing to the command.
    omit: frozenset[str] = frozenset()
    #: More names for a setting's flag, for this command only.
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _positive_seconds(text: str) -> float:
    """A duration a command can run for: more than 0 and finite."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def _meter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=_positive_seconds, default=0.0,
                        help="stop after this many seconds (default: until Ctrl-C or the replays end)")


def _transcribe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files (wav, flac, ogg, mp3; "
                        "anything else through ffmpeg)")
    parser.add_argument("--json", action="store_true", help='one JSON object per utterance: '
                        '{"source","start","end","text","language","words":[{"word","start","end"}]}')


def _config(args: argparse.Namespace) -> int:
    from earwig.config_toml import as_toml

    print(as_toml(config_module.Config() if args.defaults else _config_from(args)), end="")
    return 0


def _config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--defaults", action="store_true",
                        help="the defaults alone, not the config file's values and the flags given")


def _ctl_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["start", "stop", "toggle", "cancel", "status", "retry"],
                        help="retry: transcribe the held text (not typed: focus moved) again, more carefully, "
                             "and hold the new text on the clipboard")


def _profile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=_positive_seconds, default=0.0,
                        help="stop after this many seconds (default: when the replays end; live: Ctrl-C)")
    parser.add_argument("--out", type=Path, help="folder for the files (default: ./earwig-profile-DATE-TIME)")


def _models_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["list", "import", "export"], default="list",
                        help="list (with server.url set, also what the server serves); import a faster-whisper "
                             "model; export a bundled model as a Hugging Face transformers folder for a server "
                             "(vLLM) to serve the same weights")
    parser.add_argument("directory", nargs="?", help="with import: a CTranslate2 / faster-whisper model directory; "
                        "with export: the new folder to write")
    parser.add_argument("--name", help="with import: the name to use it by (default: the directory's name); "
                        "with export: the model (default: base)")


#: What the live commands do not need: the session's own keys (meter keeps no session).
_SESSION_KEYS = frozenset({"keep_audio"})
#: What files need of the config: the VAD and the final model, not the live parts.
_FILE_OMITS = frozenset({"keep_audio", "ring_seconds", "block_samples", "models.preview",
                         "models.preview_interval_ms", "models.idle_evict_s", "server.wait_s", "server.prompt"})

COMMANDS = (
    Command("devices", _devices, "list microphones, speaker loopbacks and the compute device"),
    Command("meter", _meter, "capture the sources and show their live levels", arguments=_meter_arguments,
            sections=frozenset({"", "mic", "speakers", "vad", "echo"}), omit=_SESSION_KEYS),
    Command("monitor", _monitor, "the live screen: spectrograms, levels, mic and speakers text side by side "
            "(also: `earwig` alone)", sections=None),
    Command("transcribe", _transcribe, "transcribe audio files, as fast as this machine goes",
            "Each file is cut by the same VAD as live audio; consecutive utterances are read together in "
            "windows of up to vad.max_utterance_s, and the windows of all the files are decoded in batches. "
            "One line per segment (or one JSON object per line with --json).",
            arguments=_transcribe_arguments, sections=frozenset({"", "vad", "models", "server"}), omit=_FILE_OMITS,
            aliases={"models.final": ("--model",)}),
    Command("dictate", _dictate, "hotkey dictation: hold the hotkey, speak, and the text is typed into the "
            "focused window", "Hold dictation.hotkey (default <ctrl>+<alt>+<space>) and speak; on release the "
            "final model's text is typed where the focus was. `earwig ctl` drives it without a hotkey. Each "
            "dictation's text is also printed.",
            sections=frozenset({"", "mic", "vad", "models", "dictation", "server"})),
    Command("ctl", _ctl, "drive a running `earwig dictate`: start, stop, toggle, cancel, status, retry",
            "Sends one command over the control socket in $XDG_RUNTIME_DIR; bind these to keys where there "
            "are no global hotkeys (Wayland). stop waits for the text and prints it; retry reads held text "
            "again and prints the new text.", arguments=_ctl_arguments),
    Command("export", export_session, "a logged session's transcript as text, subtitles or JSON",
            "Every Final of a session is logged (fsync'd before it is shown) in $XDG_DATA_HOME/earwig/sessions; "
            "this writes one out.", arguments=export_arguments),
    Command("search", search_sessions, "find a line said in any logged session, with the command that plays it",
            "Searches the text of every session log in $XDG_DATA_HOME/earwig/sessions: a line matches when it "
            "says each WORD (any order; case, punctuation and accents aside). Exit status 1 when none does.",
            arguments=search_arguments),
    Command("play", play_line, "play a logged line's audio again (sessions run with --keep-audio)",
            "Plays, through the default output, the samples a line was transcribed from, out of the session's "
            "kept audio. `earwig search` prints the command for each line it finds.", arguments=play_arguments),
    Command("profile", _profile, "run the pipeline and report where every millisecond goes",
            "Runs the real pipeline on live devices or on --replay-mic/--replay-speakers FILE (in real time), "
            "then prints per-stage latency, real-time factors, mel and VAD cost, ring fill, and CPU and memory "
            "per process, and writes report.json, trace.json (open it in ui.perfetto.dev) and latency.png.",
            arguments=_profile_arguments, sections=None),
    Command("config", _config, "print every setting this command line and config file give, as a config file",
            "Every key with what it does, as TOML: copy it into the config file "
            f"({config_module.default_path()}) and change what you need. Flags given here are applied, as "
            "every command applies them.", arguments=_config_arguments, sections=None),
    Command("models", _models, "list the Whisper models this machine has or can get (and a server's); "
            "`models import DIR` converts a faster-whisper model, `models export DIR` writes one for a server",
            arguments=_models_arguments, sections=frozenset({"server"})),
)


class _Parser(argparse.ArgumentParser):
    """A wrong argument is one line, like every other bad input, not the usage dump."""

    def error(self, message: str):
        self.exit(2, f"earwig: {message} (`{self.prog} --help` lists the arguments)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="earwig", description="Local live transcription of microphone and speakers.")
    parser.add_argument("--version", action="version", version=f"earwig {metadata.version('earwig')}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.description)
        command.arguments(sub)
        if command.sections is None or command.sections:
            sub.add_argument("--config", type=Path, help="TOML settings file "
                             f"(default: {config_module.default_path()})")
            config_flags.add_flags(sub, command.sections, command.omit, command.aliases)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv or ["monitor"])
    commands = {command.name: command for command in COMMANDS}
    try:
        result = commands[args.command].run(args)
        return asyncio.run(result) if asyncio.iscoroutine(result) else result
    except EarwigError as error:
        print(f"earwig: {error}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # leaving: a second Ctrl-C must not kill the exit
        return 130


if __name__ == "__main__":
    sys.exit(main())
