"""The settings written back as a TOML file: every key, with what it does above it.

Why generated: ``earwig config`` shows what a session will use (the file and the flags
applied), in the form the config file takes, so it can be copied into one; and the README's
example is this output for the defaults (a test holds it to it), so no documented key or
default can drift from ``config.py``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from typing import Any

import tomli_w

from earwig.config import Config
from earwig.config_flags import settings

#: Comment lines are wrapped to this width.
WIDTH = 88


def as_toml(config: Config) -> str:
    """``config`` as a TOML file: the top-level keys, then one table per section."""
    values = _values(config)
    top = [s for s in settings() if "." not in s.key]
    lines = [line for setting in top for line in _setting(setting.key, setting.description, values[setting.key])]
    section = ""
    for setting in settings():
        if "." not in setting.key:
            continue
        table, key = setting.key.rsplit(".", 1)
        if table != section:
            section = table
            lines += ["", f"[{table}]"]
        lines += _setting(key, setting.description, values[setting.key])
    return "\n".join(lines) + "\n"


def _values(config: Config) -> dict[str, Any]:
    """Each leaf key's value in ``config``."""
    values = {}
    for setting in settings():
        value: Any = config
        for part in setting.key.split("."):
            value = getattr(value, part)
        values[setting.key] = value
    return values


def _setting(key: str, description: str, value: Any) -> Iterator[str]:
    yield from textwrap.wrap(description, WIDTH - 2, initial_indent="# ", subsequent_indent="# ")
    if isinstance(value, dict):  # inline, so that its section's later keys stay in it
        pairs = ", ".join(tomli_w.dumps({name: text}).strip() for name, text in value.items())
        yield f"{tomli_w.dumps({key: 0}).split(' =')[0]} = {{ {pairs} }}"
    else:
        yield tomli_w.dumps({key: value}).strip()
