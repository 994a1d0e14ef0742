"""Answers read as they arrive: a chat turn's server-sent events, and a file's bytes. Each wraps an open
response (the connection is held until it is read to the end or closed), in a sync and an async flavour that
share the decoding."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

import httpx

from chowder.client.errors import ChowderError
from chowder.schemas.responses import ResponseEvent, ResponseObject

_DONE = "[DONE]"


class EventDecoder:
    """Server-sent events, line by line: `data:` lines gather until a blank line ends the event; `[DONE]` ends
    the stream. `event:` lines are redundant here (every event's JSON names its `type`)."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self.done = False
        self.final: ResponseObject | None = None

    def feed(self, line: str) -> ResponseEvent | None:
        if line.startswith("data:"):
            self._data.append(line[5:].removeprefix(" "))
            return None
        if line.strip() or not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        if data == _DONE:
            self.done = True
            return None
        event = ResponseEvent.model_validate_json(data)
        if event.response is not None and event.type in {"response.completed", "response.failed"}:
            self.final = event.response
        return event


class EventStream:
    """Iterate for the events; `final` holds the whole answer once `response.completed` has gone by."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._decoder = EventDecoder()

    @property
    def final(self) -> ResponseObject | None:
        return self._decoder.final

    def __iter__(self) -> Iterator[ResponseEvent]:
        try:
            for line in self._response.iter_lines():
                if (event := self._decoder.feed(line)) is not None:
                    yield event
                if self._decoder.done:
                    return
            if (event := self._decoder.feed("")) is not None:
                yield event
        except httpx.TransportError as exc:
            raise cut_off(exc) from exc
        finally:
            self.close()

    def text(self) -> Iterator[str]:
        """Only the answer's text, delta by delta."""
        return (event.delta for event in self if event.type == "response.output_text.delta" and event.delta)

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


class AsyncEventStream:
    """`async for` the events; otherwise as `EventStream`."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._decoder = EventDecoder()

    @property
    def final(self) -> ResponseObject | None:
        return self._decoder.final

    async def __aiter__(self) -> AsyncIterator[ResponseEvent]:
        try:
            async for line in self._response.aiter_lines():
                if (event := self._decoder.feed(line)) is not None:
                    yield event
                if self._decoder.done:
                    return
            if (event := self._decoder.feed("")) is not None:
                yield event
        except httpx.TransportError as exc:
            raise cut_off(exc) from exc
        finally:
            await self.aclose()

    async def text(self) -> AsyncIterator[str]:
        async for event in self:
            if event.type == "response.output_text.delta" and event.delta:
                yield event.delta

    async def aclose(self) -> None:
        await self._response.aclose()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()


class _FileHeaders:
    """What the download's headers say about the file."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.name = file_name(response.headers.get("content-disposition", ""))
        length = response.headers.get("content-length")
        self.size = int(length) if length is not None else None
        self.media_type = response.headers.get("content-type", "application/octet-stream")


class Download(_FileHeaders):
    """A file being downloaded: `iter_bytes()` streams it, `save(path)` writes it, never whole in memory."""

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        try:
            yield from self._response.iter_bytes(chunk_size)
        except httpx.TransportError as exc:
            raise cut_off(exc) from exc
        finally:
            self.close()

    def read(self) -> bytes:
        return b"".join(self.iter_bytes())

    def save(self, path: Path) -> int:
        """Writes the file to `path`; the number of bytes written."""
        written = 0
        with path.open("wb") as out:
            for chunk in self.iter_bytes():
                written += out.write(chunk)
        return written

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


class AsyncDownload(_FileHeaders):
    async def iter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes(chunk_size):
                yield chunk
        except httpx.TransportError as exc:
            raise cut_off(exc) from exc
        finally:
            await self.aclose()

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.iter_bytes()])

    async def aclose(self) -> None:
        await self._response.aclose()

    async def __aenter__(self) -> AsyncDownload:
        return self

    async def __aexit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()


def cut_off(exc: httpx.TransportError) -> ChowderError:
    """The connection broke mid-answer (the server gone, a download whose file shrank): an error of the SDK."""
    return ChowderError(f"The answer was cut off: {exc or type(exc).__name__}")


_NAME_STAR = re.compile(r"filename\*=UTF-8''([^;]+)", re.IGNORECASE)
_NAME = re.compile(r'filename="([^"]*)"', re.IGNORECASE)


def file_name(disposition: str) -> str | None:
    """The file's name from Content-Disposition: the UTF-8 form when present, else the ASCII one."""
    if found := _NAME_STAR.search(disposition):
        return unquote(found.group(1))
    if found := _NAME.search(disposition):
        return found.group(1)
    return None
