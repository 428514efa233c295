"""A worker loop whose database or Redis is away says so once, then once a minute, then when it ends."""

from __future__ import annotations

import logging

import pytest

from gateway.trouble import Trouble


def _fail(trouble: Trouble) -> None:
    try:
        raise ConnectionRefusedError("the database is away")
    except ConnectionRefusedError:
        trouble.failed()


def test_a_spell_of_failures_is_one_traceback_then_a_line_a_minute_then_one_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    trouble = Trouble(logging.getLogger("unigate.worker"), "scheme dispatch")
    with caplog.at_level(logging.INFO, logger="unigate.worker"):
        for _ in range(20):  # 10 s of polls every 0.5 s
            _fail(trouble)
        assert [(r.message, r.exc_info is not None) for r in caplog.records] == [
            ("scheme dispatch failed", True)
        ]
        assert trouble.since is not None
        caplog.clear()
        trouble.REPEAT_SECONDS = 0.0  # a minute later
        _fail(trouble)
        assert [(r.message, r.exc_info) for r in caplog.records] == [("scheme dispatch still failing", None)]
        caplog.clear()
        trouble.ok()
        trouble.ok()  # said once, not on every good poll after
        assert [r.message for r in caplog.records] == ["scheme dispatch works again"]
        assert trouble.since is None
        caplog.clear()
        _fail(trouble)  # a new spell starts with its traceback again
        assert [(r.message, r.exc_info is not None) for r in caplog.records] == [
            ("scheme dispatch failed", True)
        ]
