"""A silent HiGHS instance, for every LP of the project (clearing, curtailment).

It sits at the bottom of the package layers, beside ``errors``, so that ``market``
(the pure integer reference) constructs its solver without touching the process's
streams itself.

HiGHS's constructor prints a banner on the process's stdout (C level), which
would corrupt command output (``gridledger ... > file``). The banner is written
once per process, so only the first construction is redirected to /dev/null.
"""

from __future__ import annotations

import os
import sys

import highspy

__all__ = ["new_highs"]

_banner_shown = False


def new_highs() -> highspy.Highs:
    """Return a ``highspy.Highs`` with all console output off."""
    global _banner_shown
    if _banner_shown:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _banner_shown = True
    h.setOptionValue("output_flag", False)
    return h
