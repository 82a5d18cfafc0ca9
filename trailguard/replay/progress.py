"""Progress of a long replay, for a terminal: files, events, bytes, events/s and an ETA.

The ETA of a local replay comes from bytes: the files' sizes are known before reading, and
records per file vary far more than bytes per record. An S3 replay lists as it reads (an
organization's month is millions of objects): its ETA comes from the day folders done."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Progress:
    files_total: int | None
    bytes_total: int | None
    folders_total: int | None = None
    files_done: int = 0
    records: int = 0
    bytes_done: int = 0
    folders_done: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, files: int, records: int, size: int) -> None:
        self.files_done += files
        self.records += records
        self.bytes_done += size

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    @property
    def events_per_second(self) -> float:
        seconds = self.seconds
        return self.records / seconds if seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if self.bytes_total and self.bytes_done:
            return self.seconds * max(self.bytes_total - self.bytes_done, 0) / self.bytes_done
        if self.folders_total and self.folders_done:
            return self.seconds * max(self.folders_total - self.folders_done, 0) / self.folders_done
        return None

    def line(self) -> str:
        eta = self.eta_seconds
        files = f"{self.files_done}/{self.files_total}" if self.files_total is not None else f"{self.files_done}"
        size = f"{self.bytes_done / 2**20:.1f}" + (f"/{self.bytes_total / 2**20:.1f}" if self.bytes_total else "")
        folders = f", {self.folders_done}/{self.folders_total} day folders" if self.folders_total else ""
        return (
            f"{files} files, {self.records:,} events, {size} MiB{folders}, {self.events_per_second:,.0f} events/s"
            + (f", ETA {duration(eta)}" if eta is not None else "")
        )


def duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class TerminalLine:
    """One line of stderr rewritten in place (only on a terminal; the caller checks)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.width = 0

    def show(self, text: str) -> None:
        self.out.write("\r" + text.ljust(self.width))
        self.out.flush()
        self.width = len(text)

    def close(self) -> None:
        if self.width:
            self.out.write("\r" + " " * self.width + "\r")
            self.out.flush()
