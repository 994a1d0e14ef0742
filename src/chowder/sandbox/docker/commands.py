"""A docker sandbox's command, run to its end in a container of its own: waited for up to its timeout (then killed,
every process it started included), its output capped as a process sandbox's is."""

from __future__ import annotations

import requests
from docker.models.containers import Container

from chowder.sandbox.base import ExecResult
from chowder.sandbox.output import EXEC_TIMEOUT_EXIT, CappedOutput, timeout_note

_KILL_WAIT_S = 10


def run_to_end(container: Container, timeout_s: float) -> ExecResult:
    """Start the created `container` and wait; on timeout the result has exit code 124 and a note at the end of
    stderr."""
    container.start()
    try:
        code, note = container.wait(timeout=timeout_s)["StatusCode"], ""
    except requests.RequestException:
        container.kill()
        container.wait(timeout=_KILL_WAIT_S)
        code, note = EXEC_TIMEOUT_EXIT, timeout_note(timeout_s)
    stdout, stderr = (_capped(container, stream) for stream in ("stdout", "stderr"))
    return ExecResult(code, stdout, stderr + note)


def _capped(container: Container, stream: str) -> str:
    output = CappedOutput()
    for chunk in container.logs(stdout=stream == "stdout", stderr=stream == "stderr", stream=True):
        output.add(chunk)
    return output.text()
