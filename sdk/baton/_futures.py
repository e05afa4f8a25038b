"""Futures of submitted task runs, and helpers to wait on many: `wait`, `as_completed`."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar
from uuid import UUID

if TYPE_CHECKING:
    from baton_schemas.states import State

    from ._records import TaskRunRecord

R = TypeVar("R")


class BatonFuture(Generic[R]):
    """The eventual final state of a submitted task run.

    `result()` waits and returns the value (raising the task's exception if it failed),
    `wait()` only waits, `state` is the run's state now. In async code, `await future` gives the
    value without blocking the event loop.
    """

    __slots__ = ("_future", "task_run")

    def __init__(self, task_run: TaskRunRecord, future: concurrent.futures.Future[State]) -> None:
        self.task_run = task_run
        self._future = future

    def __repr__(self) -> str:
        return f"BatonFuture({self.task_run.name!r}, state={self.state.name if self.state else None})"

    @property
    def task_run_id(self) -> UUID:
        return self.task_run.id

    @property
    def state(self) -> State:
        if self._future.done() and not self._future.cancelled() and self._future.exception() is None:
            return self._future.result()
        state = self.task_run.state
        if state is None:
            from baton_schemas.states import Pending

            state = Pending()
        return state

    def done(self) -> bool:
        return self._future.done()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the run to end (at most `timeout` seconds); never raises the run's error."""
        try:
            concurrent.futures.wait([self._future], timeout=timeout)
        except concurrent.futures.CancelledError:
            pass

    def final_state(self, timeout: float | None = None) -> State:
        try:
            return self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"Task run {self.task_run.name!r} did not finish in {timeout}s") from None
        except BaseException:
            if self.task_run.state is not None and self.task_run.state.is_terminal:
                return self.task_run.state
            raise

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The task's return value; raises its exception if it failed (unless told not to)."""
        return self.final_state(timeout).result(raise_on_failure=raise_on_failure)  # type: ignore[no-any-return]

    def add_done_callback(self, fn: Callable[[BatonFuture[R]], Any]) -> None:
        self._future.add_done_callback(lambda _: fn(self))

    def __await__(self) -> Generator[Any, None, R]:
        import asyncio

        try:
            state = yield from asyncio.wrap_future(self._future).__await__()
        except BaseException:
            if self.task_run.state is not None and self.task_run.state.is_terminal:
                state = self.task_run.state
            else:
                raise
        return state.result()  # type: ignore[no-any-return]


class BatonFutureList(list[BatonFuture[R]]):
    """What `Task.map` returns: a list of futures with `wait()` and `result()` for them all."""

    def wait(self, timeout: float | None = None) -> None:
        wait(self, timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        return [future.result(timeout, raise_on_failure) for future in self]


class DoneAndNotDoneFutures(NamedTuple, Generic[R]):
    done: set[BatonFuture[R]]
    not_done: set[BatonFuture[R]]


def wait(futures: Iterable[BatonFuture[R]], timeout: float | None = None) -> DoneAndNotDoneFutures[R]:
    """Wait until all `futures` are done, or `timeout` seconds; returns (done, not_done)."""
    by_inner = {future._future: future for future in futures}
    done, not_done = concurrent.futures.wait(by_inner, timeout=timeout)
    return DoneAndNotDoneFutures({by_inner[f] for f in done}, {by_inner[f] for f in not_done})


def as_completed(futures: Iterable[BatonFuture[R]], timeout: float | None = None) -> Iterator[BatonFuture[R]]:
    """Yield `futures` as they finish (first finished, first out)."""
    by_inner = {future._future: future for future in futures}
    for inner in concurrent.futures.as_completed(by_inner, timeout=timeout):
        yield by_inner[inner]


class unmapped(Generic[R]):
    """Pass one value to every run of `Task.map` instead of mapping over it."""

    __slots__ = ("value",)

    def __init__(self, value: R) -> None:
        self.value = value
