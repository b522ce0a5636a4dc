"""Every setting of the config file as a command-line flag: ``vad.min_silence_ms`` is
``--vad-min-silence-ms``, and a flag given wins over the file.

Why generated from Config's fields: a new setting gets its flag, and its help text (the
field's description), without a second list to keep in step. The few short names users
type most (``--mic``, ``--replay-mic``, ``--final-model``, ``--language``) are aliases of the
same flags, and a few switches (``--no-mic``, ``--translate``) set one setting to one value.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, get_args, get_origin

import msgspec

from earwig.config import Config
from earwig.errors import EarwigError

ALIASES = {"mic.device": ("--mic",), "speakers.device": ("--speakers",),
           "mic.replay": ("--replay-mic",), "speakers.replay": ("--replay-speakers",),
           "models.preview": ("--preview-model",), "models.final": ("--final-model",),
           "models.language": ("--language",), "models.initial_prompt": ("--prompt",),
           "models.beam_size": ("--beam",)}
_METAVARS = {str: "TEXT", int: "N", float: "NUMBER"}
#: Switches that give one setting one value: ``{key: (switch, value, what it does)}``.
SWITCHES = {"mic.enabled": ("--no-mic", False, "the same as --no-mic-enabled"),
            "speakers.enabled": ("--no-speakers", False, "the same as --no-speakers-enabled"),
            "models.task": ("--translate", "translate",
                            "write English text whatever the language spoken (a multilingual model)")}


@dataclass(frozen=True)
class Setting:
    key: str
    kind: type
    description: str
    default: Any = field(compare=False)  # a dict default cannot be hashed

    @property
    def flag(self) -> str:
        return "--" + self.key.replace(".", "-").replace("_", "-")

    @property
    def dest(self) -> str:
        return "setting_" + self.key.replace(".", "__")


def settings(struct: type[msgspec.Struct] = Config, prefix: str = "") -> Iterator[Setting]:
    """The config's leaf keys, depth first, in the order the file's sections give them."""
    for member in msgspec.structs.fields(struct):
        kind, description = member.type, ""
        if get_origin(kind) is Annotated:
            kind, *metadata = get_args(kind)
            description = " ".join(m.description for m in metadata if getattr(m, "description", None))
        key = prefix + member.name
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            yield from settings(kind, key + ".")
        else:
            default = member.default if member.default is not msgspec.NODEFAULT else member.default_factory()
            yield Setting(key, kind, description, default)


def add_flags(parser: argparse.ArgumentParser, sections: frozenset[str] | None = None,
              omit: frozenset[str] = frozenset(), aliases: dict[str, tuple[str, ...]] | None = None) -> None:
    """One flag per setting; ``sections`` limits them to those top-level sections (a key
    outside any section counts as the section ""), ``omit`` leaves out keys that mean
    nothing to the command, ``aliases`` adds the command's own names for some."""
    group = parser.add_argument_group("settings (each overrides the config file's key of the same name)")
    for setting in _chosen(sections):
        if setting.key in omit:
            continue
        names = (setting.flag, *ALIASES.get(setting.key, ()), *(aliases or {}).get(setting.key, ()))
        help_text = f"{setting.description} (config: {setting.key}; default: {setting.default!r})"
        if setting.kind is bool:
            group.add_argument(*names, dest=setting.dest, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        else:
            group.add_argument(*names, dest=setting.dest, default=None,
                               metavar=_METAVARS.get(setting.kind, "VALUE"), help=help_text)
        if setting.key in SWITCHES:
            switch, value, what = SWITCHES[setting.key]
            group.add_argument(switch, dest=setting.dest, action="store_const", const=value, help=what)


def apply(config: Config, args: argparse.Namespace) -> Config:
    """The config with the flags that were given; a value that does not fit its setting is
    one line naming the flag."""
    given = {s: getattr(args, s.dest) for s in settings() if getattr(args, s.dest, None) is not None}
    if not given:
        return config
    raw = msgspec.to_builtins(config)
    for setting, value in given.items():
        if get_origin(setting.kind) is dict:
            try:
                value = json.loads(value)
            except json.JSONDecodeError as error:
                raise EarwigError(f"{setting.flag} {_shown(value)}: not a JSON object ({error})",
                                  f"""give it as {setting.flag} '{{"new line": "\\n"}}'""") from None
        *sections, name = setting.key.split(".")
        table = raw
        for section in sections:
            table = table[section]
        table[name] = value
    try:
        return msgspec.convert(raw, Config, strict=False)  # not strict: "0.6" is a float here
    except msgspec.ValidationError as error:
        named = [s for s in given if s.key in str(error)] or list(given)
        flags = ", ".join(f"{s.flag} {_shown(given[s])}" for s in named)
        command = getattr(args, "command", None) or "monitor"
        raise EarwigError(f"{flags}: {error}", f"`earwig {command} --help` gives each setting") from None


def _chosen(sections: frozenset[str] | None) -> Iterator[Setting]:
    for setting in settings():
        section = setting.key.split(".")[0] if "." in setting.key else ""
        if sections is None or section in sections:
            yield setting


def _shown(value: object) -> str:
    """A value as typed, or quoted where it holds a newline or another unprintable character:
    the error stays one line."""
    text = str(value)
    return text if text.isprintable() else repr(text)
