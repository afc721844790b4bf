"""Waiting for the device: one generation at a time, in order, with each waiting visitor's real
place in line and wait.

Gradio's own queue knows neither how long a generation takes nor when someone ahead cancels, so
generations wait here instead: `join` gives a place (or says the line is full), `wait_turn`
returns when it is that place's turn, reporting the position and the wait whenever they change;
leaving (done, failed or cancelled) moves everyone behind forward at once.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..progress import ProgressUpdate, format_seconds
from .cancel import CancelToken
from .errors import GenerationCancelled, ServiceError


class QueueFullError(ServiceError):
    title = "Busy"


@dataclass
class Ticket:
    """One generation's place: waiting, then running (with its latest progress)."""

    session: str
    token: CancelToken
    estimate_seconds: float | None
    number: int = 0
    started_at: float | None = None  # monotonic time its turn came
    update: ProgressUpdate | None = None
    joined_at: float = field(default_factory=time.monotonic)

    @property
    def running(self) -> bool:
        return self.started_at is not None

    def seconds_left(self, now: float) -> float | None:
        """A running ticket's time left: its progress's measured figure, else the estimate minus the time spent."""
        if self.update is not None and self.update.seconds_left is not None:
            return self.update.seconds_left
        if self.estimate_seconds is None:
            return None
        spent = now - (self.started_at if self.started_at is not None else now)
        return max(0.0, self.estimate_seconds - spent)


@dataclass(frozen=True)
class Place:
    """A waiting ticket's position (1: next) and the estimated wait (None: unknown)."""

    position: int
    wait_seconds: float | None

    def describe(self) -> str:
        """ "Waiting: next in line, about 40 s" / "Waiting: 3rd in line, about 2 min"."""
        where = "next in line" if self.position == 1 else f"{ordinal(self.position)} in line"
        if self.wait_seconds is None:
            return f"Waiting: {where}"
        return f"Waiting: {where}, {format_seconds(self.wait_seconds)}"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class DeviceQueue:
    """Generations in the order they came; one runs at a time. At most `max_waiting` wait."""

    POLL_SECONDS = 0.25

    def __init__(self, max_waiting: int = 16, clock: Callable[[], float] = time.monotonic):
        self.max_waiting = max_waiting
        self.clock = clock
        self._tickets: list[Ticket] = []  # the running one (if any) first, then in order of arrival
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def join(self, session: str | None, token: CancelToken, estimate_seconds: float | None = None) -> Ticket:
        with self._lock:
            waiting = sum(1 for t in self._tickets if not t.running)
            if waiting >= self.max_waiting:
                raise QueueFullError(
                    f"The queue is full: {waiting} videos are waiting to be made. Please try again in a few minutes."
                )
            ticket = Ticket(session or "", token, estimate_seconds, number=next(self._numbers))
            self._tickets.append(ticket)
            return ticket

    def leave(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket in self._tickets:
                self._tickets.remove(ticket)

    def place(self, ticket: Ticket) -> Place | None:
        """Where a waiting `ticket` stands; None once it runs or has left."""
        now = self.clock()
        with self._lock:
            if ticket not in self._tickets or ticket.running:
                return None
            ahead = self._tickets[: self._tickets.index(ticket)]
        wait: float | None = 0.0
        for other in ahead:
            seconds = other.seconds_left(now) if other.running else other.estimate_seconds
            if seconds is None:
                wait = None
                break
            wait += seconds
        return Place(position=sum(1 for t in ahead if not t.running) + 1, wait_seconds=wait)

    async def wait_turn(self, ticket: Ticket, report: Callable[[Place], None] | None = None) -> None:
        """Return when `ticket` is first in line (and mark it running). Reports its place whenever
        it changes; raises `GenerationCancelled` (and leaves) when its token is cancelled."""
        shown = None
        try:
            while True:
                if ticket.token.cancelled:
                    raise GenerationCancelled("Generation cancelled.")
                with self._lock:
                    if self._tickets and self._tickets[0] is ticket:
                        ticket.started_at = self.clock()
                        return
                place = self.place(ticket)
                if place is not None and report is not None:
                    text = place.describe()
                    if text != shown:
                        report(place)
                        shown = text
                await asyncio.sleep(self.POLL_SECONDS)
        except BaseException:  # cancelled (by the token or the page's queue) or failed: give the place up
            self.leave(ticket)
            raise

    def ticket_of(self, session: str | None) -> Ticket | None:
        """The session's newest ticket, waiting or running."""
        with self._lock:
            tickets = [t for t in self._tickets if t.session == (session or "")]
        return tickets[-1] if tickets else None
