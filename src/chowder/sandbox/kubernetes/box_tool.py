"""The contract's file operations and exec for sandboxes the control plane cannot reach on its own disk (a pod on
some node): each runs `boxtool.js` in the sandbox's pod through the exec subresource, and its refusals come back
as the same API errors `boxfs` gives on this host."""

from __future__ import annotations

import errno
import io
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from importlib import resources
from typing import TypeVar

from chowder.core.errors import BadRequest, ChowderError, ProviderError
from chowder.core.images import IMAGE_NODE
from chowder.core.offload import file_chunks
from chowder.sandbox.base import ExecResult, FileEntry, FileStream
from chowder.sandbox.boxfs import ESCAPE, IS_DIR, LOOP, NOT_REGULAR, ROOT_ITSELF, file_error, within
from chowder.sandbox.kubernetes.pod_exec import ExecReader, PodCommand
from chowder.sandbox.output import EXEC_TIMEOUT_EXIT, CappedOutput, timeout_note

T = TypeVar("T")
SCRIPT = resources.files("chowder.sandbox.kubernetes").joinpath("boxtool.js").read_bytes()
# Reads the tool (its length in argv) from stdin and runs it: the exec request's URL stays short (a cluster's audit
# log records it), and what follows on stdin is the tool's own input.
_BOOTSTRAP = (
    "const fs=require('fs');const n=+process.argv[1];const b=Buffer.alloc(n);let g=0;"
    "while(g<n){try{g+=fs.readSync(0,b,g,n-g,null)}catch(e){if(e.code!=='EAGAIN')throw e}}"
    "process.argv.splice(1,1);eval(b.toString())"
)
_REFUSED = 3  # the tool's exit code for a refusal the API reports
_TOOL_TIMEOUT_S = 120.0
_TOOL_OUTPUT_CAP = 64 << 20  # a listing's JSON; a read is capped at what it asked for
_REFUSALS = {"escape": ESCAPE, "loop": LOOP, "root": ROOT_ITSELF, "is_dir": IS_DIR, "not_regular": NOT_REGULAR}


class ToolFileOperations(ABC):
    @abstractmethod
    def _pod_of(self, sandbox_id: str) -> PodCommand:
        """A running pod holding the sandbox's box (its own, or a tools pod while it is stopped); blocking."""

    @abstractmethod
    async def _offload(self, function: Callable[[], T]) -> T:
        """`function()` in a thread, its failures as the provider reports them."""

    async def read_file(self, sandbox_id: str, path: str, *, max_bytes: int, tail: bool = False) -> bytes:
        args = (path, str(max_bytes), "1" if tail else "0")
        return within(await self._tool(sandbox_id, "read", *args, cap=max_bytes + 1), max_bytes, tail=tail)

    async def open_file(self, sandbox_id: str, path: str) -> FileStream:
        reader = await self._offload(lambda: self._stream(sandbox_id, path))
        output = io.BufferedReader(reader)
        header = await self._offload(output.readline)
        if not header:
            output.close()
            raise _refusal(reader.stderr())
        return FileStream(int(header), file_chunks(output, int(header)))

    async def write_file(self, sandbox_id: str, path: str, data: bytes) -> None:
        """Atomic (temp file + rename, which replaces a symlink rather than writing through it); makes parents."""
        await self._tool(sandbox_id, "write", path, str(len(data)), stdin=data)

    async def list_dir(self, sandbox_id: str, path: str) -> list[FileEntry]:
        """Entries sorted by name; symlinks are described, not followed."""
        listed = json.loads(await self._tool(sandbox_id, "list", path))
        return [FileEntry(**entry) for entry in listed]

    async def move(self, sandbox_id: str, source: str, destination: str) -> None:
        """rename(2): `destination` is the new path, not a directory to move into; parents are made."""
        await self._tool(sandbox_id, "move", source, destination)

    async def delete_path(self, sandbox_id: str, path: str) -> None:
        await self._tool(sandbox_id, "delete", path)

    async def mkdir(self, sandbox_id: str, path: str) -> None:
        """Like `mkdir -p`."""
        await self._tool(sandbox_id, "mkdir", path)

    async def exec(self, sandbox_id: str, argv: list[str], env: dict[str, str], timeout_s: float) -> ExecResult:
        """argv and env reach the pod on stdin (an exec request's command line may be logged by the cluster); the
        command's processes are killed together at the timeout."""
        request = json.dumps({"argv": argv, "env": env}).encode()
        timing = (str(round(timeout_s * 1000)), str(EXEC_TIMEOUT_EXIT), str(len(request)))
        stdout, stderr = CappedOutput(), CappedOutput()

        def run() -> int:
            command = _tool_command("run", *timing)
            pod = self._pod_of(sandbox_id)
            return pod.run(command, SCRIPT + request, timeout_s + _TOOL_TIMEOUT_S, stdout, stderr)

        code = await self._offload(run)  # the command's own: `run` refuses nothing
        note = timeout_note(timeout_s) if code == EXEC_TIMEOUT_EXIT else ""
        return ExecResult(code, stdout.text(), stderr.text() + note)

    async def _tool(
        self, sandbox_id: str, op: str, *args: str, stdin: bytes | None = None, cap: int = _TOOL_OUTPUT_CAP
    ) -> bytes:
        stdout, stderr = CappedOutput(cap), CappedOutput()

        def run() -> int:
            command = _tool_command(op, *args)
            return self._pod_of(sandbox_id).run(command, SCRIPT + (stdin or b""), _TOOL_TIMEOUT_S, stdout, stderr)

        code = await self._offload(run)
        if code == _REFUSED:
            raise _refusal(stderr.text())
        if code != 0:
            raise ProviderError(f"The sandbox's file tool failed ({op}, exit {code}): {stderr.text()[-500:]}")
        return stdout.data()

    def _stream(self, sandbox_id: str, path: str) -> ExecReader:
        return ExecReader(self._pod_of(sandbox_id).open(_tool_command("stream", path), SCRIPT))


def _tool_command(op: str, *args: str) -> list[str]:
    return [str(IMAGE_NODE), "-e", _BOOTSTRAP, str(len(SCRIPT)), op, *args]


def _refusal(stderr: str) -> ChowderError:
    """The tool's refusal as the API error `boxfs` would raise for the same path on this host."""
    try:
        body = json.loads(stderr)
    except ValueError:
        return ProviderError(f"The sandbox's file tool failed: {stderr[-500:]}")
    if body.get("error") in _REFUSALS:
        return BadRequest(_REFUSALS[body["error"]])
    known = file_error(getattr(errno, str(body.get("errno")), 0))
    return known or ProviderError(f"The sandbox's file tool failed: {body.get('message', stderr)[-500:]}")
