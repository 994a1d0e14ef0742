"""One API call described as data: method, path, query, body, headers, and how to read the answer. The sync and
async clients only differ in how they send a `Call`, so every endpoint's shape is written once, here and in
`routes.py`, and both clients execute the same descriptions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

T = TypeVar("T")
U = TypeVar("U")
M = TypeVar("M", bound=BaseModel)

IDEMPOTENCY_KEY = "Idempotency-Key"
NEXT_CURSOR = "x-next-cursor"
# Calls that wait on the server for a gateway (start, chat, skill install) get this long unless told otherwise.
LONG_TIMEOUT_S = 900.0
_SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a growing list (extension): pass `next_cursor` back as `cursor`; None on the last page."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ReportPage(Generic[T]):
    """A usage report whose breakdowns hold at most `limit` groups each (extension; the total is always the whole
    range's): pass `next_cursor` back as `cursor` for the next groups; None when none remain."""

    report: T
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    files: Any = None
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None

    @property
    def retryable(self) -> bool:
        """Safe to send again after a 502/503 or a lost connection: the method is idempotent, or the caller made
        the POST so with an Idempotency-Key (the server then answers a repeat with the first answer)."""
        return self.method in _SAFE_METHODS or IDEMPOTENCY_KEY in self.headers

    def then(self, step: Callable[[T], U]) -> Call[U]:
        """The same call, its answer read further (a page's items, a file's content)."""
        parse = self.parse
        return replace(self, parse=lambda response: step(parse(response)))  # type: ignore[arg-type, return-value]

    def request_args(self) -> dict[str, Any]:
        """Keyword arguments of `httpx.Client.build_request` (the same for the async client)."""
        args: dict[str, Any] = {
            "params": {k: _query_value(v) for k, v in self.params.items() if v is not None},
            "headers": dict(self.headers),
        }
        if self.json is not None:
            args["json"] = self.json
        if self.content is not None:
            args["content"] = self.content
        if self.files is not None:
            args["files"] = self.files
            args["data"] = self.data
        if self.timeout is not None:
            args["timeout"] = self.timeout
        return args


def call(method: str, path: str, parse: Callable[[httpx.Response], T], **fields: Any) -> Call[T]:
    """A call; `idempotency_key`, when given, becomes the header (and makes a POST retryable)."""
    key = fields.pop("idempotency_key", None)
    if key is not None:
        fields["headers"] = {**fields.get("headers", {}), IDEMPOTENCY_KEY: key}
    return Call(method, path, parse, **fields)


def body(model: BaseModel) -> Any:
    """A request model as JSON, with only the fields the caller set (the server's defaults apply to the rest)."""
    return model.model_dump(mode="json", exclude_unset=True)


def one(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.model_validate_json(response.content)


def many(model: type[M]) -> Callable[[httpx.Response], list[M]]:
    adapter: TypeAdapter[list[M]] = TypeAdapter(list[model])  # type: ignore[valid-type]
    return lambda response: adapter.validate_json(response.content)


def page(model: type[M]) -> Callable[[httpx.Response], Page[M]]:
    items = many(model)
    return lambda response: Page(items(response), response.headers.get(NEXT_CURSOR))


def report_page(model: type[M]) -> Callable[[httpx.Response], ReportPage[M]]:
    report = one(model)
    return lambda response: ReportPage(report(response), response.headers.get(NEXT_CURSOR))


def nothing(_response: httpx.Response) -> None:
    return None


def raw(response: httpx.Response) -> httpx.Response:
    """For streamed answers: the caller reads the body itself."""
    return response


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
