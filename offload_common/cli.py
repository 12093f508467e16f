"""Shared by the command-line tools (``h2c_*``, ``approxbit_*``): a path the user gave that does
not exist or cannot be read ends the tool with one ``<tool>: error: ...`` line and exit status 2,
as argparse does for a bad option, instead of a traceback. Anything else keeps its traceback."""
from __future__ import annotations

import functools
import sys
from typing import Callable, Optional, Sequence

PATH_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def path_errors_in_one_line(prog: str) -> Callable:
    def decorate(main: Callable[[Optional[Sequence[str]]], int]) -> Callable:
        @functools.wraps(main)
        def wrapper(argv: Optional[Sequence[str]] = None) -> int:
            try:
                return main(argv)
            except PATH_ERRORS as exc:
                print(f"{prog}: error: {exc}", file=sys.stderr)
                return 2
        return wrapper
    return decorate
