"""The value-check switch (bceweights/checks.py): per call, per context (thread, asyncio task), per process."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
import torch

import bceweights as bw
from bceweights.checks import value_checks_enabled

BAD_TARGET = torch.tensor([[0.5, 2.0]])
LOGITS = torch.zeros(1, 2)


@pytest.fixture(autouse=True)
def _process_default_restored():
    previous = bw.set_value_checks(True)
    yield
    bw.set_value_checks(previous)


def loss_checks_values() -> bool:
    """Whether the loss, called without ``check_values``, refuses a target of 2."""
    try:
        bw.bce_with_logits(LOGITS, BAD_TARGET)
    except ValueError:
        return True
    return False


def test_precedence_call_then_block_then_process_default():
    assert value_checks_enabled() and loss_checks_values()
    assert value_checks_enabled(False) is False
    with bw.value_checks(False):
        assert not value_checks_enabled() and not loss_checks_values()
        assert value_checks_enabled(True) is True
        assert bw.set_value_checks(True) is True  # the default changes, the open block still wins
        assert not value_checks_enabled()
    assert bw.set_value_checks(False) is True
    assert not value_checks_enabled() and not loss_checks_values()
    with bw.value_checks(True):
        assert value_checks_enabled() and loss_checks_values()
    assert not value_checks_enabled()


def test_nested_blocks_restore_in_order():
    with bw.value_checks(False):
        with bw.value_checks(True):
            assert value_checks_enabled()
            with bw.value_checks(False):
                assert not value_checks_enabled()
            assert value_checks_enabled()
        assert not value_checks_enabled()
    assert value_checks_enabled()


def test_block_restores_after_an_exception():
    with pytest.raises(RuntimeError), bw.value_checks(False):
        raise RuntimeError("inside")
    assert value_checks_enabled()


def test_overlapping_blocks_that_end_out_of_order_leave_the_default():
    first, second = bw.value_checks(False), bw.value_checks(False)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the outer one ends first
    assert not value_checks_enabled()  # the second block is still open
    second.__exit__(None, None, None)
    assert value_checks_enabled() and loss_checks_values()


def test_interleaved_blocks_of_different_values():
    off, on = bw.value_checks(False), bw.value_checks(True)
    off.__enter__()
    on.__enter__()
    off.__exit__(None, None, None)
    assert value_checks_enabled()  # only the True block is open
    with bw.value_checks(False):
        on.__exit__(None, None, None)  # ends under a newer block: that block still decides
        assert not value_checks_enabled()
    assert value_checks_enabled()


def test_decorator_form_is_reentrant():
    @bw.value_checks(False)
    def depth(n: int) -> list[bool]:
        seen = [value_checks_enabled()]
        return seen + depth(n - 1) if n else seen

    assert depth(3) == [False] * 4
    assert value_checks_enabled()


def test_a_block_in_one_thread_does_not_switch_checks_off_in_another():
    inside = threading.Event()
    release = threading.Event()
    seen: dict[str, bool] = {}

    def switcher() -> None:
        with bw.value_checks(False):
            seen["switcher"] = value_checks_enabled()
            inside.set()
            release.wait(5)

    def observer() -> None:
        inside.wait(5)
        seen["observer"] = loss_checks_values()
        release.set()

    threads = [threading.Thread(target=switcher), threading.Thread(target=observer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"switcher": False, "observer": True}
    assert loss_checks_values()  # the main thread never saw the block either


def test_overlapping_blocks_in_two_threads_leave_checks_on():
    """Thread A enters, thread B enters, A exits, B exits: the old global switch ended up off."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def thread_a() -> None:
        with bw.value_checks(False):
            a_in.set()
            b_in.wait(5)
        seen["a after"] = value_checks_enabled()
        a_out.set()

    def thread_b() -> None:
        a_in.wait(5)
        with bw.value_checks(False):
            b_in.set()
            a_out.wait(5)
            seen["b inside, after a left"] = value_checks_enabled()
        seen["b after"] = value_checks_enabled()

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"a after": True, "b inside, after a left": False, "b after": True}
    assert value_checks_enabled() and loss_checks_values()


def test_process_default_reaches_other_threads():
    bw.set_value_checks(False)
    seen = []
    thread = threading.Thread(target=lambda: seen.append(value_checks_enabled()))
    thread.start()
    thread.join(10)
    assert seen == [False]


def test_many_threads_toggling_blocks_never_leak():
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def worker(enabled: bool) -> None:
        barrier.wait(5)
        for _ in range(200):
            with bw.value_checks(enabled):
                if value_checks_enabled() is not enabled:
                    errors.append("block not seen")
            if not value_checks_enabled():
                errors.append("leaked off")

    threads = [threading.Thread(target=worker, args=(i % 2 == 0,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert value_checks_enabled()


def test_asyncio_tasks_have_their_own_blocks():
    async def in_block(enabled: bool, started: asyncio.Event, other: asyncio.Event) -> list[bool]:
        with bw.value_checks(enabled):
            started.set()
            await other.wait()  # the other task is inside its own block now
            seen = [value_checks_enabled()]
        return [*seen, value_checks_enabled()]

    async def main() -> tuple[list[bool], list[bool], bool]:
        off_started, on_started = asyncio.Event(), asyncio.Event()
        off = asyncio.create_task(in_block(False, off_started, on_started))
        on = asyncio.create_task(in_block(True, on_started, off_started))
        return await off, await on, value_checks_enabled()

    off_seen, on_seen, main_seen = asyncio.run(main())
    assert off_seen == [False, True]
    assert on_seen == [True, True]
    assert main_seen is True


def test_a_task_inherits_the_block_open_where_it_was_created():
    async def main() -> tuple[bool, bool]:
        with bw.value_checks(False):
            task = asyncio.create_task(asyncio.sleep(0, result=None))
            child = asyncio.create_task(_enabled_later())
        await task
        return await child, value_checks_enabled()

    child_seen, parent_seen = asyncio.run(main())
    assert child_seen is False  # the context copied at creation holds the block
    assert parent_seen is True


async def _enabled_later() -> bool:
    await asyncio.sleep(0)
    return value_checks_enabled()


def test_copied_context_does_not_leak_back():
    def run_block() -> bool:
        with bw.value_checks(False):
            return value_checks_enabled()

    assert contextvars.copy_context().run(run_block) is False
    assert value_checks_enabled()
