"""The ``earwig`` command line. Every failure a user can fix ends as one line and exit 2."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import msgspec

from earwig import config as config_module
from earwig.errors import EarwigError
from earwig.messages import SOURCES, ActorFailed, Level, SourceEnded

USER_ERROR_EXIT = 2


def _source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings file "
                        f"(default: {config_module.default_path()})")
    for source, what in (("mic", "microphone"), ("speakers", "speakers' loopback")):
        parser.add_argument(f"--{source}", metavar="NAME", help=f"{what} device: a name or index "
                            "from `earwig devices` (default: the system default)")
        parser.add_argument(f"--no-{source}", action="store_true", help=f"do not capture the {what}")
        parser.add_argument(f"--replay-{source}", metavar="FILE",
                            help=f"play an audio file as the {what} instead of a device")


def _config_from(args: argparse.Namespace) -> config_module.Config:
    config = config_module.load(args.config)
    for source in SOURCES:
        settings = config.source(source)
        changes = {}
        if getattr(args, source):
            changes["device"] = getattr(args, source)
        if getattr(args, f"no_{source}"):
            changes["enabled"] = False
        if getattr(args, f"replay_{source}"):
            changes["replay"] = getattr(args, f"replay_{source}")
        config = msgspec.structs.replace(config, **{source: msgspec.structs.replace(settings, **changes)})
    return config


def _devices(args: argparse.Namespace) -> int:
    from earwig import compute
    from earwig.actors.capture_devices import NO_SERVER_FIX, list_devices

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
    print(f"Compute device: {compute.describe()}")
    return 0


def _meter_line(levels: dict[str, Level | None]) -> str:
    parts = []
    for source, level in levels.items():
        if level is None:
            parts.append(f"{source:>8} {'(waiting)':<28}")
            continue
        filled = int(max(0.0, min(1.0, (level.rms_db + 60) / 60)) * 20)
        clip = " CLIP" if level.clipped else ""
        parts.append(f"{source:>8} {'#' * filled:<20} {level.rms_db:6.1f} dB{clip}")
    return "  ".join(parts)


async def _meter(args: argparse.Namespace) -> int:
    from earwig.shm import segments
    from earwig.supervisor.plan import capture_plan
    from earwig.supervisor.supervisor import Supervisor

    config = _config_from(args)
    plan = capture_plan(config, segments.run_prefix())
    replaying = {s for s in plan.sources if config.source(s).replay}
    levels: dict[str, Level | None] = {s: None for s in plan.sources}
    interactive = sys.stdout.isatty()
    async with Supervisor(plan.rings, plan.actors) as supervisor:
        events = supervisor.subscribe()
        done = asyncio.Event()
        failure: list[ActorFailed] = []

        async def follow() -> None:
            next_print = 0.0
            while True:
                message = await events.get()
                if isinstance(message, Level):
                    levels[message.source] = message
                elif isinstance(message, SourceEnded):
                    replaying.discard(message.source)
                    if not replaying and all(config.source(s).replay for s in plan.sources):
                        done.set()
                elif isinstance(message, ActorFailed):
                    if message.fatal:
                        failure.append(message)
                        done.set()
                    else:
                        print(f"earwig: {message.error}", file=sys.stderr)
                now = time.monotonic()
                if now >= next_print:
                    next_print = now + (0.1 if interactive else 1.0)
                    print(_meter_line(levels), end="\r" if interactive else "\n", flush=True)

        follower = asyncio.create_task(follow())
        timer = asyncio.get_running_loop().call_later(args.seconds, done.set) if args.seconds else None
        await supervisor.run_until_signal(done)
        follower.cancel()
        if timer:
            timer.cancel()
    if interactive:
        print()
    if failure:
        error = failure[0]
        raise EarwigError(error.error, error.fix)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="earwig", description="Local live transcription of microphone and speakers.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("devices", help="list microphones, speaker loopbacks and the compute device")
    meter = commands.add_parser("meter", help="capture the sources and show their live levels")
    _source_options(meter)
    meter.add_argument("--seconds", type=float, default=0.0,
                       help="stop after this many seconds (default: until Ctrl-C or the replays end)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "devices":
            return _devices(args)
        if args.command == "meter":
            return asyncio.run(_meter(args))
        parser.print_help()
        return 0
    except EarwigError as error:
        print(f"earwig: {error}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
