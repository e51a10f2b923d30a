"""Command-line output into a pipe whose reader stopped early (`python -m qa ask … | head -1`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def run_quietly_in_pipes(main: Callable[[], int]) -> int:
    """`main()`, except that a reader closing the pipe ends the command quietly (exit 0) instead of with a
    BrokenPipeError traceback: it got the lines it wanted."""
    try:
        code = main()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
