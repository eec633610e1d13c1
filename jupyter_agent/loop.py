"""The agent's own event loop, in a daemon thread.

All network I/O (HTTP, WebSocket, realtime) runs here, never on the kernel's loop: ipykernel 7
does not advance background tasks between cells, and nest_asyncio corrupts it. Callers on
other threads or loops submit coroutines and get futures back.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class AgentLoop:
    """An asyncio loop running forever in a daemon thread."""

    def __init__(self, name: str = "jupyter-agent-loop") -> None:
        self._ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the agent loop; thread-safe."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the agent loop from any loop; cancelling the caller cancels it."""
        if self.in_loop():
            return await coro
        future = self.submit(coro)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Block the calling (non-agent) thread until ``coro`` finishes."""
        if self.in_loop():
            raise RuntimeError("run_sync called from the agent loop itself")
        return self.submit(coro).result(timeout)


_default: AgentLoop | None = None
_lock = threading.Lock()


def get_agent_loop() -> AgentLoop:
    """The process-wide agent loop (started on first use)."""
    global _default
    with _lock:
        if _default is None or not _default.thread.is_alive():
            _default = AgentLoop()
        return _default


class EventBridge(Generic[T]):
    """Thread-safe hand-off of items from the agent thread to a consumer on another loop.

    Producers call ``put`` from any thread; at most one wake-up is scheduled on the consumer
    loop per batch, so a 10,000 events/s stream costs a few hundred wake-ups, not 10,000.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._items: collections.deque[T] = collections.deque()
        self._lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None
        self._wake_pending = False

    def put(self, item: T) -> None:
        with self._lock:
            self._items.append(item)
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # consumer loop closed
            pass

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def drain(self) -> list[T]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items

    async def get_batch(self, timeout: float | None = None) -> list[T]:
        """Everything queued so far; waits up to ``timeout`` when nothing is queued."""
        items = self.drain()
        if items:
            return items
        self._waiter = self._loop.create_future()
        try:
            if self._items:  # raced with a producer between drain and waiter creation
                return self.drain()
            # Not wait_for: on Python 3.11 it swallows a cancellation (a kernel interrupt of the
            # cell) that arrives as the waiter completes. asyncio.wait always re-raises it.
            await asyncio.wait((self._waiter,), timeout=timeout)
        finally:
            self._waiter = None
        return self.drain()
