"""Progress for people: numbered steps, a status line that moves, elapsed times and ETAs.

On a terminal the status line is rewritten in place; elsewhere (a log, a test's
capture, ``make demo | tee``) it is printed as a line every ``every_s`` seconds,
so a long step is never silent.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO


class Progress:
    """Writes the demo's lines; ``status`` keeps one line moving while a step runs."""

    def __init__(self, total: int, out: IO[str] | None = None, every_s: float = 10.0) -> None:
        self.total = total
        self.out = out or sys.stdout
        self.every_s = every_s
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self._number = 0
        self._last_status = 0.0
        self._shown = ""  # the status text on screen (terminal only)
        self._lock = threading.Lock()

    def step(self, text: str) -> None:
        """Start step n of ``total``: ``[n/total] text``."""
        self._number += 1
        self.say(f"[{self._number}/{self.total}] {text}")

    def say(self, text: str) -> None:
        """A line that stays."""
        with self._lock:
            self._clear()
            self.out.write(text + "\n")
            self.out.flush()

    def status(self, text: str, *, force: bool = False) -> None:
        """The moving line: in place on a terminal, else at most one line every ``every_s`` (or ``force``)."""
        with self._lock:
            now = time.monotonic()
            if self.tty:
                self._clear()
                self.out.write("      " + text)
                self._shown = text
            elif force or now - self._last_status >= self.every_s:
                self.out.write("      " + text + "\n")
                self._last_status = now
            else:
                return
            self.out.flush()

    def _clear(self) -> None:
        if self.tty and self._shown:
            self.out.write("\r\x1b[2K")
            self._shown = ""

    @contextlib.contextmanager
    def timed(self, text: str, detail: Callable[[], str] | None = None) -> Iterator[None]:
        """Run a blocking step with ``text ... 12 s`` moving beside it, then ``text: done in 12.3 s``."""
        started = time.monotonic()
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(1.0):
                extra = detail() if detail is not None else ""
                self.status(f"{text} ... {time.monotonic() - started:.0f} s{extra}")

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            stop.set()
            ticker.join()
        self.say(f"      {text}: done in {time.monotonic() - started:.1f} s")


def eta(done: float, total: float, elapsed_s: float) -> str:
    """``ETA 42 s`` from the rate so far, or ``""`` while it cannot be known."""
    if done <= 0 or total <= done or elapsed_s <= 0:
        return ""
    return f"ETA {(total - done) * elapsed_s / done:.0f} s"
