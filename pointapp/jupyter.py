"""pointapp inside IPython (a Jupyter kernel): an expected error shows as one line, not a traceback.

A :class:`~pointapp.errors.PointappError` says what is wrong and what to do in one line, as the CLI prints
it. IPython's custom exception handler shows that line in place of the traceback; the cell still fails
(its output is an error output with the exception's name and message), so Run All stops there and
papermill, nbclient and nbval see the failure as before.
"""

from __future__ import annotations

import sys
from typing import Any

from pointapp.errors import PointappError


def show_one_line(shell: Any, etype: type[BaseException], value: BaseException, tb: Any,
                  tb_offset: int | None = None) -> None:
    """IPython's handler for a PointappError: the cell's error output is ``error: <message>``.

    IPython ignores what a custom handler returns: the handler shows the error itself, through the shell's
    ``_showtraceback`` (in a kernel, the one that sends the cell's error output with the exception's name and
    message, as for any error; papermill and nbclient read those)."""
    shell._showtraceback(etype, value, [f"error: {value}"])


def show_errors_in_one_line() -> bool:
    """In a running IPython shell, show every PointappError as one line; elsewhere do nothing.

    A custom handler set by someone else for other exceptions is left alone. Returns whether the handler is on.
    """
    if "IPython" not in sys.modules:  # not inside IPython: importing it to find out would cost a second
        return False
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return False
    if shell.custom_exceptions not in ((), (PointappError,)):
        return False
    shell.set_custom_exc((PointappError,), show_one_line)
    return True
