"""LocalAgreement-2 on sequences of preview hypotheses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from earwig.actors.preview_agreement import LocalAgreement

pytestmark = pytest.mark.pure


def test_words_commit_once_two_runs_agree_on_them():
    agreement = LocalAgreement()
    assert agreement.update("The quick") == ("", "The quick")
    assert agreement.update("The quick brown") == ("The quick", "brown")
    assert agreement.update("The quick round fox") == ("The quick", "round fox")
    assert agreement.update("The quick brown fox jumps") == ("The quick", "brown fox jumps")
    assert agreement.update("The quick brown fox jumps over.") == ("The quick brown fox jumps", "over.")


def test_case_and_punctuation_do_not_break_agreement_and_committed_spelling_stays():
    agreement = LocalAgreement()
    agreement.update("near the river bank.")
    assert agreement.update("Near the river bank, then") == ("Near the river bank,", "then")
    assert agreement.update("near the river bank. Then we") == ("Near the river bank, Then", "we")


def test_a_hypothesis_that_rewrites_committed_words_does_not_retract_them():
    agreement = LocalAgreement()
    agreement.update("ask not what")
    agreement.update("ask not what your")
    assert agreement.update("ask what you can do") == ("ask not what", "can do")
    assert agreement.committed == ["ask", "not", "what"]


def test_a_pause_commits_the_whole_hypothesis_unless_it_rewrote_committed_words():
    agreement = LocalAgreement()
    agreement.update("ask not what")
    agreement.update("ask not what your")
    assert agreement.finish("ask not what your country can do") == ("ask not what your country can do", "")
    assert agreement.update("ask not what your country can do for you") == (
        "ask not what your country can do", "for you")
    rewritten = LocalAgreement()
    rewritten.update("ask not")
    rewritten.update("ask not what")
    assert rewritten.finish("asked what you") == ("ask not", "you")


def test_a_decoding_loop_is_never_committed():
    """A small model over a long stretch of noise repeats itself; committed words stay."""
    agreement = LocalAgreement()
    agreement.update("Good morning.")
    assert agreement.update("Good morning. Hello? Hello? Hello? Hello?")[0] == "Good morning."
    assert agreement.update("Good morning. Hello? Hello? Hello? Hello? Hello?")[0] == "Good morning."
    assert agreement.finish("Good morning. Hello? Hello? Hello? Hello? Hello? Hello?")[0] == "Good morning."
    assert agreement.finish("Good morning. I didn't know you were there.") == (
        "Good morning. I didn't know you were there.", "")


VOCABULARY = st.sampled_from(["ask", "not", "what", "your", "country", "can", "do", "for", "you"])


@given(st.lists(st.lists(VOCABULARY, max_size=8), max_size=12))
def test_committed_text_only_ever_grows(hypotheses):
    agreement = LocalAgreement()
    before = ""
    for i, words in enumerate(hypotheses):
        step = agreement.finish if i % 3 == 2 else agreement.update
        committed, tentative = step(" ".join(words))
        assert committed.startswith(before)
        before = committed
