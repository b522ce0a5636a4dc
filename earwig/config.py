"""Settings: one TOML file in the XDG config dir, decoded and validated by msgspec.

Why msgspec: the same library already types every message, and its errors carry the path
of the offending key (``$.mic.device``), which becomes the one line the user sees.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from earwig.errors import EarwigError
from earwig.messages import Source

SAMPLE_RATE = 16_000


class SourceConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    #: A name or index from ``earwig devices``; empty: the default input (mic) or the
    #: monitor of the default output (speakers).
    device: str = ""
    #: Play this audio file into the source instead of capturing a device.
    replay: str = ""
    #: Replay at real-time speed (False: as fast as the slowest ring reader takes it).
    realtime: bool = True


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    mic: SourceConfig = msgspec.field(default_factory=SourceConfig)
    speakers: SourceConfig = msgspec.field(default_factory=SourceConfig)
    #: How much audio each PCM ring holds; a reader further behind than this loses audio.
    ring_seconds: float = 120.0
    #: Samples per PCM ring item (160 = one 10 ms mel hop at 16 kHz).
    block_samples: int = 160

    def source(self, name: Source) -> SourceConfig:
        return getattr(self, name)


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "earwig" / "config.toml"


def load(path: Path | None = None) -> Config:
    """Read the config file; a missing default file means defaults, a missing named one is an error."""
    explicit = path is not None
    path = path or default_path()
    if not path.exists():
        if explicit:
            raise EarwigError(f"config file {path} does not exist",
                              "check the path given to --config")
        return Config()
    try:
        return msgspec.toml.decode(path.read_bytes(), type=Config)
    except msgspec.ValidationError as error:
        raise EarwigError(f"config {path}: {error}",
                          "fix or remove that key; `earwig --help` lists the settings") from None
    except msgspec.DecodeError as error:
        raise EarwigError(f"config {path} is not valid TOML: {error}", "fix the syntax") from None
