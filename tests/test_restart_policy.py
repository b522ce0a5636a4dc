"""What an actor's exit calls for, exit by exit: the supervisor's restart policy as data."""

from collections import deque

import pytest

from earwig.actors.runtime import FATAL_EXIT
from earwig.supervisor.supervisor import RestartPolicy

pytestmark = pytest.mark.pure


def test_a_crash_is_restarted_with_a_doubling_backoff_until_it_crashes_too_often():
    policy = RestartPolicy(first_delay_s=0.1, max_delay_s=0.3, max_restarts=3, window_s=60)
    restarts = deque()
    decisions = [policy.after_exit(-9, False, restarts, now=float(n)) for n in range(4)]
    assert [(d.action, d.delay_s) for d in decisions] == [
        ("restart", 0.1), ("restart", 0.2), ("restart", 0.3), ("gave_up", 0.0)]


def test_crashes_older_than_the_window_are_forgiven():
    policy = RestartPolicy(max_restarts=1, window_s=10)
    restarts = deque()
    assert policy.after_exit(1, False, restarts, now=0.0).action == "restart"
    assert policy.after_exit(1, False, restarts, now=20.0).action == "restart"
    assert policy.after_exit(1, False, restarts, now=21.0).action == "gave_up"


def test_a_finished_an_evicted_and_a_failed_actor_are_not_restarted():
    policy, restarts = RestartPolicy(), deque()
    assert policy.after_exit(0, False, restarts, now=0.0).action == "finished"
    assert policy.after_exit(0, True, restarts, now=0.0).action == "evicted"
    assert policy.after_exit(-15, True, restarts, now=0.0).action == "evicted"
    assert policy.after_exit(FATAL_EXIT, False, restarts, now=0.0).action == "failed"
    assert not restarts  # none of them counts as a crash
