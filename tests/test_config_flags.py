"""Every config key has a flag, a flag wins over the file, and a bad value names its flag."""

from __future__ import annotations

import pytest

from earwig import config_flags
from earwig.cli import build_parser, _config_from
from earwig.config import Config
from earwig.errors import EarwigError

pytestmark = pytest.mark.pure


def parse(*argv: str):
    return build_parser().parse_args(["monitor", *argv])


def test_every_key_of_the_config_file_has_a_flag_in_the_monitor_help():
    monitor = build_parser()._subparsers._group_actions[0].choices["monitor"]
    help_text = " ".join(monitor.format_help().split())  # argparse wraps lines
    keys = [s.key for s in config_flags.settings()]
    assert {"mic.device", "vad.min_silence_ms", "models.idle_evict_s", "monitor.frame_rate"} <= set(keys)
    for setting in config_flags.settings():
        assert setting.flag in help_text and f"config: {setting.key};" in help_text


def test_a_flag_overrides_the_file_and_the_rest_of_the_file_stays(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[vad]\nthreshold = 0.7\nmin_silence_ms = 400\n[models]\nfinal = "tiny.en"\n')
    config = _config_from(parse("--config", str(path), "--vad-min-silence-ms", "300",
                                "--no-mic", "--replay-speakers", "b.wav", "--monitor-frame-rate", "20"))
    assert config.vad.threshold == 0.7 and config.vad.min_silence_ms == 300
    assert config.models.final == "tiny.en"
    assert not config.mic.enabled and config.speakers.replay == "b.wav"
    assert config.monitor.frame_rate == 20.0


def test_no_flag_given_is_the_file_unchanged(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('device = "cpu"\n')
    assert _config_from(parse("--config", str(path))) == Config(device="cpu")


@pytest.mark.parametrize("argv, needles", [
    (("--monitor-frame-rate", "0"), ("--monitor-frame-rate 0", "monitor.frame_rate", ">= 1")),
    (("--models-idle-evict-s", "soon"), ("--models-idle-evict-s soon", "float")),
    (("--models-task", "summarise"), ("--models-task summarise", '"transcribe" or "translate"')),
])
def test_a_bad_flag_value_is_one_error_naming_the_flag(argv, needles):
    with pytest.raises(EarwigError) as caught:
        _config_from(parse(*argv))
    assert all(needle in str(caught.value) for needle in needles), str(caught.value)


def test_an_unknown_key_in_the_file_is_named(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[monitor]\nframerate = 10\n")
    with pytest.raises(EarwigError) as caught:
        _config_from(parse("--config", str(path)))
    assert "framerate" in str(caught.value) and "monitor" in str(caught.value)


def test_earwig_config_prints_a_config_file_that_reads_back_as_what_the_file_and_flags_gave(tmp_path, capsys):
    """`earwig config` with a file and a flag: its output, as a config file, is the same
    settings (every key, with the file's value, the flag's, and the defaults)."""
    from earwig import cli
    from earwig.config import load

    path = tmp_path / "config.toml"
    path.write_text('[vad]\nthreshold = 0.7\n[dictation.replacements]\n"full stop" = "."\n')
    assert cli.main(["config", "--config", str(path), "--vad-min-silence-ms", "700", "--no-speakers"]) == 0
    printed = tmp_path / "printed.toml"
    printed.write_text(capsys.readouterr().out)
    again = load(printed)
    assert again == _config_from(parse("--config", str(path), "--vad-min-silence-ms", "700", "--no-speakers"))
    assert again.vad.threshold == 0.7 and again.vad.min_silence_ms == 700 and not again.speakers.enabled
    assert again.dictation.replacements == {"full stop": "."}
    for setting in config_flags.settings():  # every key, with what it does above it
        assert f"\n{setting.key.rsplit('.', 1)[-1]} = " in "\n" + printed.read_text()


def test_the_readmes_config_example_is_the_defaults_as_earwig_config_prints_them(capsys):
    from pathlib import Path

    from earwig import cli

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    assert cli.main(["config", "--defaults"]) == 0
    assert example == capsys.readouterr().out
