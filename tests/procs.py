"""Helpers for tests that run gridledger in a child process."""

from __future__ import annotations

import signal

__all__ = ["interruptible"]


def interruptible() -> None:
    """``preexec_fn`` of a child that the test stops with SIGINT (Ctrl-C): the default
    disposition, so that Python turns SIGINT into KeyboardInterrupt as in a terminal. A
    shell running the suite as a background job ignores SIGINT, and children inherit
    that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
