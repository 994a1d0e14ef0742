"""How one description of a route serves both clients: a resource class names its routes once, as
`endpoint(builder)` attributes, and each attribute becomes a method with the builder's signature that returns the
answer on a `SyncResource` (the `Chowder` client) and an awaitable of it on an `AsyncResource` (`AsyncChowder`).
The type checker sees both (overloaded `__get__`), so the signatures are written once, in `routes.py` and
`agent_routes.py`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload

import httpx

from chowder.client.calls import Call

P = ParamSpec("P")
T = TypeVar("T")


class SyncRunner(Protocol):
    def run(self, call: Call[T]) -> T: ...

    def open(self, call: Call[Any], stream: bool = True) -> httpx.Response: ...


class AsyncRunner(Protocol):
    async def run(self, call: Call[T]) -> T: ...

    async def open(self, call: Call[Any], stream: bool = True) -> httpx.Response: ...


class SyncResource:
    def __init__(self, sender: SyncRunner) -> None:
        self._sender = sender


class AsyncResource:
    def __init__(self, sender: AsyncRunner) -> None:
        self._sender = sender


class endpoint(Generic[P, T]):  # noqa: N801 - used like a decorator, named like one
    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__
        self._name = build.__name__

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, resource: None, owner: type[Any]) -> endpoint[P, T]: ...

    @overload
    def __get__(self, resource: AsyncResource, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __get__(self, resource: SyncResource, owner: type[Any]) -> Callable[P, T]: ...

    def __get__(self, resource: SyncResource | AsyncResource | None, owner: type[Any]) -> Any:
        if resource is None:
            return self
        build = self._build
        if isinstance(resource, AsyncResource):
            sender = resource._sender

            async def send_later(*args: P.args, **kwargs: P.kwargs) -> T:
                return await sender.run(build(*args, **kwargs))

            return _named(send_later, build, self._name)
        runner = resource._sender

        def send(*args: P.args, **kwargs: P.kwargs) -> T:
            return runner.run(build(*args, **kwargs))

        return _named(send, build, self._name)


def _named(method: Callable[..., Any], build: Callable[..., Any], name: str) -> Callable[..., Any]:
    """For `help()` and debuggers: the method's name, and the builder's docstring and parameters."""
    method.__doc__ = build.__doc__
    method.__name__ = method.__qualname__ = name
    method.__signature__ = inspect.signature(build).replace(return_annotation=inspect.Signature.empty)  # type: ignore[attr-defined]
    return method
