"""Console output: messages, errors, and progress (rich bars on a terminal, plain lines otherwise).

Rich markup is off on both consoles: messages quote user input (paths, class names,
config keys) and ``[raw]`` or ``[params]`` must print as typed. Style goes through
``styled`` (a ``Text`` whose message part is never parsed).
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

#: Messages and tables go to stdout; errors and progress to stderr.
console = Console(highlight=False, markup=False)
err_console = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


def styled(prefix: str, message: str = "", style: str = "bold red") -> Text:
    """``prefix`` in ``style`` followed by ``message`` as plain text (brackets kept)."""
    return Text.assemble((prefix, style), message)


def error(message: str) -> None:
    """One red ``error:`` line on stderr."""
    err_console.print(styled("error: ", message))


def warn(message: str) -> None:
    """One ``warning:`` line on stderr."""
    err_console.print(styled("warning: ", message, "bold yellow"))


class Reporter:
    """A task's progress callback ``(done, total)`` for explainers and loops.

    Args:
        description: what the task is.
        mode: ``bar`` (a rich bar), ``plain`` (a line at every quarter) or ``quiet``.
        bar: the rich ``Progress`` that holds the bar.
        quiet_for: plain lines start only once the task has run this many seconds (nested
            tasks: a quick method prints nothing, a slow one shows it is alive).
    """

    def __init__(self, description: str, mode: str, bar: Progress | None = None, quiet_for: float = 0.0) -> None:
        self.description = description
        self.mode = mode
        self.bar = bar
        self.task = bar.add_task(description, total=None) if bar is not None else None
        self.started = time.perf_counter()
        self.next_line = 0.0
        self.quiet_for = quiet_for
        self.base = 0  # items done without work (skipped on --resume): not counted in the ETA

    def __call__(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total)
        elif self.mode == "plain" and total:
            elapsed = time.perf_counter() - self.started
            fraction = done / total
            if elapsed < self.quiet_for and done < total:
                return
            if fraction >= self.next_line or done == total:
                worked = (done - self.base) / total
                eta = f", eta {elapsed / worked * (1 - fraction):.0f}s" if worked > 0 and fraction < 1 else ""
                err_console.print(f"{self.description}: {done}/{total} ({fraction:.0%}, {elapsed:.1f}s{eta})")
                self.next_line = fraction + 0.25

    def skip(self, done: int, total: int) -> None:
        """``done`` of ``total`` items are finished without work (resumed): the ETA counts only the rest."""
        self.base = done
        self.started = time.perf_counter()
        if self.bar is not None:
            self.bar.reset(self.task, total=total, completed=done)
        else:
            self(done, total)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.remove_task(self.task)


@contextmanager
def progress_display(quiet: bool = False):
    """Yield a factory ``make(description, quiet_for=0) -> Reporter`` suited to the output stream."""
    if quiet:
        yield lambda description, quiet_for=0.0: Reporter(description, "quiet")
        return
    if not sys.stderr.isatty():
        yield lambda description, quiet_for=0.0: Reporter(description, "plain", quiet_for=quiet_for)
        return
    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        yield lambda description, quiet_for=0.0: Reporter(description, "bar", bar)
