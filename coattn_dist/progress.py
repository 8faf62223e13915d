"""Progress lines for long work: stderr, at most one every few seconds, with rate and ETA.

stdout stays reserved for each command's final one-line JSON summary, so scripts can parse it.
"""

from __future__ import annotations

import os
import sys
import time


class Progress:
    def __init__(self, label: str, total: int | None = None, every_s: float = 5.0, stream=None):
        self.label, self.total, self.every_s = label, total, every_s
        self.stream = stream or sys.stderr
        self.start = self.last = time.monotonic()
        self.done = 0

    def __call__(self, done: int, total: int | None = None) -> None:
        self.done, self.total = done, total or self.total
        now = time.monotonic()
        if now - self.last >= self.every_s or (self.total and done >= self.total):
            self.last = now
            print(self.line(), file=self.stream, flush=True)

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"[{self.label}] {self.done}" + (f"/{self.total}" if self.total else "")
        text += f"  {rate:.1f}/s  {elapsed:.0f}s"
        if self.total and rate > 0 and self.done < self.total:
            text += f"  ETA {(self.total - self.done) / rate:.0f}s"
        return text


def log_line(label: str):
    """A training-log callback: one line per event dict."""

    def log(event: dict) -> None:
        fields = "  ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in event.items()
        )
        print(f"[{label}] {fields}", file=sys.stderr, flush=True)

    return log


def verbose() -> bool:
    """``coattn --verbose`` (or COATTN_VERBOSE=1): Ray's own INFO lines, progress bars and workers'
    logs as well as ours. Off by default, so a job's screen shows its progress and its answers."""
    return os.environ.get("COATTN_VERBOSE", "") not in ("", "0")
