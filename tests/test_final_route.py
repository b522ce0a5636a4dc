"""The served engine's decisions, event by event: which utterance goes to the server, when
the local model steps in, how a failed server is tried again."""

from __future__ import annotations

import pytest

from earwig.actors.final_route import FIRST_RETRY_S, MOST_RETRY_S, ServerRoute

pytestmark = pytest.mark.pure


def test_while_the_server_answers_every_utterance_goes_to_it_and_the_local_model_waits():
    route = ServerRoute()
    for now in (0.0, 0.1, 0.2):
        assert route.use_server(now)
        route.sent()
        assert route.local_after(3.0) > 0
    assert route.answered() is None  # it was up all along: nothing to tell


def test_the_local_models_turn_comes_after_what_a_local_pass_took():
    route = ServerRoute()
    route.local_pass(audio_s=4.0, took_s=2.0)  # half a second a second of audio
    assert route.local_after(4.0) == pytest.approx(2.0)
    assert route.local_after(8.0) == pytest.approx(4.0)
    route.local_pass(audio_s=4.0, took_s=0.4)
    assert route.local_after(4.0) < 2.0  # it follows the measured pace


def test_a_failure_warns_once_and_the_local_model_reads_at_once():
    route = ServerRoute()
    change = route.failed(10.0, "cannot reach http://x")
    assert route.failures == 1  # what was sent before it is no longer waited for
    assert change is not None and change.warning and "cannot reach http://x" in change.text
    assert route.local_after(3.0) == 0.0
    assert not route.use_server(10.0)  # not hammered
    assert route.failed(10.0, "again") is None  # one warning per outage


def test_a_down_server_is_tried_with_one_utterance_after_a_wait_that_doubles():
    route = ServerRoute()
    route.failed(0.0, "down")
    assert not route.use_server(FIRST_RETRY_S - 0.01)
    assert route.use_server(FIRST_RETRY_S)
    route.sent()
    assert not route.use_server(FIRST_RETRY_S)  # one try in flight at a time
    route.failed(FIRST_RETRY_S, "still down")
    assert not route.use_server(FIRST_RETRY_S + 2 * FIRST_RETRY_S - 0.01)
    assert route.use_server(FIRST_RETRY_S + 2 * FIRST_RETRY_S)


def test_a_down_server_says_when_its_try_is_due_so_that_a_silence_does_not_put_it_off():
    route = ServerRoute()
    assert route.next_try_s(0.0) is None  # up: nothing to try
    route.failed(10.0, "down")
    assert route.next_try_s(10.0) == pytest.approx(FIRST_RETRY_S)
    assert route.next_try_s(10.0 + 5 * FIRST_RETRY_S) == 0.0  # overdue: at once
    route.sent()
    assert route.next_try_s(20.0) is None  # the try is in flight
    route.failed(20.0, "still down")
    assert route.next_try_s(20.0) == pytest.approx(2 * FIRST_RETRY_S)
    route.answered()
    assert route.next_try_s(30.0) is None


def test_the_wait_between_tries_stops_growing_at_a_minute():
    route, now = ServerRoute(), 0.0
    for _ in range(20):
        route.failed(now, "down")
        wait = next(t for t in (now + k * 0.5 for k in range(1, 1000)) if route.use_server(t)) - now
        route.sent()
        now += wait
    assert wait == pytest.approx(MOST_RETRY_S, abs=0.5)


def test_an_answer_brings_the_server_back_with_a_notice_and_the_first_wait_again():
    route = ServerRoute()
    route.failed(0.0, "down")
    route.failed(0.0, "down")
    route.sent()
    change = route.answered()
    assert change is not None and not change.warning
    assert route.use_server(0.0) and route.local_after(2.0) > 0
    route.failed(100.0, "down")
    assert route.use_server(100.0 + FIRST_RETRY_S)


def test_a_set_wait_replaces_the_measured_pace_while_the_server_is_up():
    route = ServerRoute(wait_s=5.0)
    route.local_pass(audio_s=4.0, took_s=1.0)
    assert route.local_after(4.0) == 5.0
    route.failed(0.0, "down")
    assert route.local_after(4.0) == 0.0


def test_a_request_sent_before_a_failure_that_fails_after_the_server_came_back_warns_nothing():
    route = ServerRoute()
    first, second = route.failures, route.failures  # two requests stalled together
    assert route.failed(30.0, "did not answer in time", sent_after=first).warning
    route.sent()
    assert route.answered() is not None  # the try after a second brings it back
    assert route.failed(32.0, "did not answer in time", sent_after=second) is None
    assert route.up and route.use_server(32.0)  # the outage it belonged to is over
    assert route.failed(40.0, "down", sent_after=route.failures).warning  # a new one warns


def test_a_late_answer_to_a_request_sent_before_a_failure_does_not_bring_the_server_back():
    route = ServerRoute()
    before = route.failures  # in flight while another request fails
    assert route.failed(10.0, "HTTP 500", sent_after=route.failures).warning
    assert route.answered(sent_after=before) is None and not route.up
    assert route.use_server(10.0 + FIRST_RETRY_S)  # the try is still due, after the same wait
    route.sent()
    assert route.failed(11.0, "HTTP 500", sent_after=route.failures) is None  # the same outage: no warning
    route.sent()
    assert route.answered(sent_after=route.failures) is not None and route.up  # a try answered: back
