"""EventBridge: the hand-off of agent events to the cell's coroutine on the kernel loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from jupyter_agent.loop import EventBridge


async def test_batches_items_put_from_another_thread():
    bridge: EventBridge[int] = EventBridge()
    threading.Thread(target=lambda: [bridge.put(i) for i in range(1000)]).start()
    got: list[int] = []
    while len(got) < 1000:
        got += await bridge.get_batch(timeout=1.0)
    assert got == list(range(1000))


async def test_times_out_empty():
    bridge: EventBridge[int] = EventBridge()
    assert await bridge.get_batch(timeout=0.01) == []


@pytest.mark.parametrize("hops", range(3))
async def test_a_cancel_racing_a_wake_up_is_never_swallowed(hops):
    """A kernel interrupt cancels the cell's task; it must propagate even when an event wakes
    the waiter in the same loop iteration (asyncio.wait_for on 3.11 returned the result instead)."""
    bridge: EventBridge[int] = EventBridge()
    task = asyncio.create_task(bridge.get_batch(timeout=5.0))
    await asyncio.sleep(0)
    assert bridge._waiter is not None
    bridge._items.append(1)
    bridge._waiter.set_result(None)
    for _ in range(hops):
        await asyncio.sleep(0)
        if task.done():  # the batch was delivered before the interrupt: nothing to cancel
            assert task.result() == [1]
            return
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
