"""Where earwig keeps its files, by the XDG base directory spec: settings in the config
dir, converted weights in the cache dir, logs in the state dir, transcripts in the data dir.

Why one module: every actor and command that writes a file asks here, so an ``XDG_*``
variable moves all of them (the tests rely on that to write nothing into ``$HOME``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from earwig.errors import EarwigError


def _base(variable: str, default: str) -> Path:
    return Path(os.environ.get(variable) or Path.home() / default)


def config_home() -> Path:
    return _base("XDG_CONFIG_HOME", ".config")


def cache_home() -> Path:
    return _base("XDG_CACHE_HOME", ".cache")


def state_dir() -> Path:
    """Logs: what the actors printed (``actors.log``)."""
    return _base("XDG_STATE_HOME", ".local/state") / "earwig"


def data_dir() -> Path:
    """What the user keeps: saved transcripts."""
    return _base("XDG_DATA_HOME", ".local/share") / "earwig"


def runtime_dir() -> Path:
    """Sockets: ``$XDG_RUNTIME_DIR/earwig`` (private to the user by the spec), made 0700."""
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/earwig-{os.getuid()}"
    folder = Path(base) / "earwig" if os.environ.get("XDG_RUNTIME_DIR") else Path(base)
    with _named_by("XDG_RUNTIME_DIR", folder):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.chmod(0o700)
    return folder


def fresh_log(name: str) -> Path:
    """A log file for this session in the state dir; the previous session's is kept as
    ``NAME.1``, so the log of a crash survives the next start but logs never pile up."""
    folder = state_dir()
    path = folder / name
    with _named_by("XDG_STATE_HOME", folder):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.exists():
            path.replace(path.with_name(f"{name}.1"))
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))  # writable, before anything starts
    return path


@contextmanager
def _named_by(variable: str, folder: Path):
    """A folder earwig cannot make or write is one line naming the variable that put it there."""
    try:
        yield
    except OSError as error:
        raise EarwigError(f"cannot use {folder} ({variable}): {error.strerror or error}",
                          f"point {variable} at a folder you can write, or unset it") from None
