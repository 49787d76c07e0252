"""The rig's one polling wait."""

from __future__ import annotations

import itertools

import pytest

from tests.support import wait_until


def test_returns_the_first_truthy_answer() -> None:
    answers = iter([None, [], ["run-1"]])
    assert wait_until(lambda: next(answers), 5, interval=0) == ["run-1"]


def test_a_wait_that_gives_up_names_what_it_waited_for_and_the_last_state() -> None:
    polls = itertools.count(1)
    last = 0

    def never() -> bool:
        nonlocal last
        last = next(polls)
        return False

    gave_up = r"timed out after 0s waiting for the run \(polled [1-9]\d* times\)"
    with pytest.raises(TimeoutError, match=gave_up):
        wait_until(never, 0, interval=0, message=lambda: f"the run (polled {last} times)")
