"""The commands on logged sessions: export a transcript, search every session's text, play
a line's audio again. They read what the supervisor wrote (``earwig/session/log.py``,
``earwig/session/audio.py``) and start nothing."""

from __future__ import annotations

import argparse
import math
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

from earwig import export, session_search
from earwig.config import SAMPLE_RATE
from earwig.errors import EarwigError
from earwig.messages import Final
from earwig.session.log import find_session, logged_sessions, read_session, sessions_dir


def export_session(args: argparse.Namespace) -> int:
    if args.list:
        for path in sorted(sessions_dir().glob("*.jsonl")):
            try:
                print(f"{path.stem}  {len(read_session(path).logged)} Finals  {path}")
            except EarwigError as error:
                print(f"{path.stem}  {error.problem}")
        return 0
    path = find_session(args.session)
    finals = _shown_finals(path, args.source)
    started = _started(path)
    text = {"txt": lambda: export.as_text(finals, started), "srt": lambda: export.as_subtitles(finals, False),
            "vtt": lambda: export.as_subtitles(finals, True), "json": lambda: export.as_json(finals) + "\n"}[args.format]()
    if args.output:
        try:
            descriptor = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(text)
        except OSError as error:
            raise EarwigError(f"cannot write {args.output}: {error.strerror}", "choose a writable path") from None
    else:
        sys.stdout.write(text)
    return 0


def _shown_finals(log: Path, source: str | None) -> list[Final]:
    """The lines the monitor showed (not echo, not empty), of one source or both; damaged
    lines are left out with one warning, a file with no line of a log at all is an error."""
    session = read_session(log)
    if session.damaged and not session.logged:
        raise EarwigError(f"{log} is not an earwig session log: none of its {len(session.damaged)} line(s) is a record",
                          "give a session from `earwig export --list`")
    if session.damage(log):
        print(f"earwig: {session.damage(log)}", file=sys.stderr)
    return [f for f in session.finals if f.readable and (source is None or f.source == source)]


def _started(log: Path) -> datetime:
    """When the session began: its name says (DATE-TIME-PID), else the file's last change."""
    try:
        return datetime.strptime(log.stem.rsplit("-", 1)[0], "%Y%m%d-%H%M%S")
    except ValueError:
        return datetime.fromtimestamp(log.stat().st_mtime)


def search_sessions(args: argparse.Namespace) -> int:
    since = _date(args.since) if args.since else None
    if not session_search.words_of(" ".join(args.words)):
        raise EarwigError(f"nothing to search for in {' '.join(args.words)!r}", "give words: earwig search WORDS")
    logs = logged_sessions()
    hits = session_search.search(logs, " ".join(args.words), since,
                                 warn=lambda problem: print(f"earwig: {problem}", file=sys.stderr))
    for hit in hits:
        print(f"{hit.session}  {hit.wall:%Y-%m-%d %H:%M:%S}  {export.TITLES[hit.final.source]:<8}  "
              f"{export.clock(hit.final.start)}  {hit.final.text}")
        print(f"    {hit.play_command()}")
    if not hits:
        print(f"no line of {len(logs)} session(s){' since ' + args.since if args.since else ''} says "
              f"{' '.join(args.words)!r}", file=sys.stderr)
        return 1
    return 0


def _date(text: str) -> datetime:
    """An ISO date or time, or today / yesterday (from their midnight)."""
    midnight = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    named = {"today": midnight, "yesterday": midnight - timedelta(days=1)}
    if text.lower() in named:
        return named[text.lower()]
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise EarwigError(f"--since {text!r} is not a date",
                          "give one as 2026-12-01, '2026-12-01 14:30', today or yesterday") from None


def play_line(args: argparse.Namespace) -> int:
    log = find_session(args.session)
    at = _seconds(args.start)
    finals = _shown_finals(log, args.source)
    position = round(at * SAMPLE_RATE)
    around = [f for f in finals if f.start - SAMPLE_RATE // 20 <= position < f.end]
    if not around:
        raise EarwigError(f"no line of session {log.stem} is at {args.start}",
                          "`earwig search WORDS` prints each line's play command")
    final = min(around, key=lambda f: abs(f.start - position))
    print(f"[{final.source}] {final.text}")
    from earwig import playback  # NumPy and an audio output: what `earwig ctl`, run per key press, need not load

    player = playback.Player()
    player.play(playback.line_audio(log, final))
    player.done.wait()
    player.stop()
    return 0


def _seconds(text: str) -> float:
    """Seconds, or minutes:seconds (as the transcript prints times)."""
    try:
        minutes, _, seconds = text.rpartition(":")
        value = float(seconds) + 60 * int(minutes or 0)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise EarwigError(f"START {text!r} is not a time", "give seconds (83.4) or minutes:seconds (1:23.4)")
    return value


def export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", nargs="?", help='a session name from --list, a log file, or "last" '
                        "(the default)")
    parser.add_argument("--format", choices=["txt", "srt", "vtt", "json"], default="txt")
    parser.add_argument("--source", choices=["mic", "speakers"], help="one source only (default: both, "
                        "interleaved by time)")
    parser.add_argument("--output", "-o", type=Path, help="write here (mode 0600) instead of stdout")
    parser.add_argument("--list", action="store_true", help="list the logged sessions")


def search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("words", nargs="+", metavar="WORD", help="words the line says, in any order "
                        "(case and punctuation aside)")
    parser.add_argument("--since", help="only lines from this date or time on (2026-12-01, '2026-12-01 14:30', "
                        "today, yesterday)")


def play_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", help='a session name (`earwig export --list`), a log file, or "last"')
    parser.add_argument("start", metavar="START", help="where the line starts: seconds (83.4) or minutes:seconds")
    parser.add_argument("--source", choices=["mic", "speakers"], help="the line's source (default: the line "
                        "at START in either)")
