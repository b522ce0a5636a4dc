"""Every setting, every kind of wrong value, property-based (hypothesis): through a flag of
every command that has it and through the config file, a value is either refused with one
line naming it (``earwig: --vad-threshold nan: ...``, exit 2 in the CLI) or it is one that
can work. Nothing is a traceback; NaN and a negative count are never accepted silently.

The settings and the commands are read from the code (``config_flags.settings``, ``cli.COMMANDS``),
so a new setting or command is covered without touching this file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from earwig import cli, config, config_flags
from earwig.errors import EarwigError

pytestmark = pytest.mark.pure

SETTINGS = [s for s in config_flags.settings() if s.kind in (int, float, str)]
#: Where infinity means something a user may want: never evict, always join.
ENDLESS = {"models.idle_evict_s", "dictation.join_within_s"}
#: Each command's parser, and the flags it has.
PARSERS = {command.name: cli.build_parser()._subparsers._group_actions[0].choices[command.name]
           for command in cli.COMMANDS}

#: What a command needs besides its flags, to be parsed at all.
POSITIONALS = {"transcribe": ["speech.wav"], "ctl": ["status"], "play": ["last", "1"]}

wrong_values = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e300", "-1e300", "", " ", "[]", "{}", "true", "0x10"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-10**15, max_value=10**15).map(str),
    st.text(max_size=12))


def _flag_commands(setting: config_flags.Setting) -> list[str]:
    return [name for name, parser in PARSERS.items()
            if any(setting.flag in action.option_strings for action in parser._actions)]


def _acceptable(setting: config_flags.Setting, value) -> bool:
    """What a setting may hold once accepted: a finite number (infinity where it means
    "never"), no negative count, and a value its own type can carry."""
    if setting.kind in (int, float):
        number = float(value)
        finite = math.isfinite(number) or setting.key in ENDLESS and number == math.inf
        return finite and (number >= 0 or setting.key in {"monitor.niceness"})
    return isinstance(value, str)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.key)
@hypothesis_settings(max_examples=25, deadline=None)
@given(text=wrong_values)
def test_a_flag_value_is_one_line_naming_it_or_one_that_can_work(setting, text):
    for command in _flag_commands(setting):
        args = PARSERS[command].parse_args([*POSITIONALS.get(command, []), f"{setting.flag}={text}"])
        try:
            made = config_flags.apply(config.Config(), args)
        except EarwigError as error:
            line = f"earwig: {error}"
            assert "\n" not in line and setting.flag in line, line
            continue
        value = made
        for part in setting.key.split("."):
            value = getattr(value, part)
        assert _acceptable(setting, value), (command, setting.key, text, value)


def _toml(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return json.dumps(value, ensure_ascii=False)  # a TOML basic string, integer or float


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.kind in (int, float)], ids=lambda s: s.key)
@hypothesis_settings(max_examples=25, deadline=None)
@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**15, 10**15),
                       st.text(max_size=8), st.lists(st.integers(), max_size=2)))
def test_a_config_file_value_is_one_line_naming_its_key_or_one_that_can_work(setting, value, tmp_path_factory):
    *sections, name = setting.key.split(".")
    literal = f"{name} = {_toml(value)}\n"
    path = Path(tmp_path_factory.mktemp("config")) / "config.toml"
    path.write_text((f"[{'.'.join(sections)}]\n" if sections else "") + literal)
    try:
        made = config.load(path)
    except EarwigError as error:
        line = f"earwig: {error}"
        named = setting.key in line or name in line or "is not valid TOML" in line  # a syntax error names its line
        assert "\n" not in line and named, line
        return
    held = made
    for part in setting.key.split("."):
        held = getattr(held, part)
    assert _acceptable(setting, held), (setting.key, value, held)
