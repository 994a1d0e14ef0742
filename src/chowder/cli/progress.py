"""The live view of an instance on its way to `running` (create --wait, start, recover): a spinner with the
elapsed time, its status and current step, redrawn as it goes; each new step is also printed as a line, so a log
or a terminal that cannot redraw still tells the story."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from rich.console import Console, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table

from chowder.client import Chowder, ChowderError, Progress
from chowder.schemas.instances import Instance

# The audit log's lifecycle events, as a person would say them.
STEPS = {
    "instance.create": "created, waiting for the engine",
    "POST /v1/instances": "created, waiting for the engine",
    "instance.start": "start requested",
    "instance.recover": "recovery requested",
    "instance.restart": "restart requested",
    "instance.launching": "booting the gateway",
    "instance.relaunching": "booting the gateway again",
    "instance.sandbox_died": "sandbox died, booting again",
    "instance.booted": "gateway ready",
    "instance.boot_failed": "boot failed",
    "instance.stop": "stop requested",
    "instance.stopped": "stopped",
    "instance.power": "waking up",
    "POST /v1/instances/{instance_id}/stop": "stopped",
    "POST /v1/instances/{instance_id}/start": "start answered",
    "POST /v1/instances/{instance_id}/recover": "recovery answered",
}


def step_label(step: str | None) -> str:
    if step is None:
        return "waiting"
    return STEPS.get(step, step)


class _View:
    """Rendered at every refresh, so the elapsed time ticks between polls."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.status = "…"
        self.step: str | None = None
        self.started = time.monotonic()
        self.spinner = Spinner("dots")

    def __rich__(self) -> RenderableType:
        grid = Table.grid(padding=(0, 1))
        grid.add_row(
            self.spinner,
            f"[bold]{self.name}[/bold]",
            f"[cyan]{self.status}[/cyan]",
            step_label(self.step),
            f"[dim]{time.monotonic() - self.started:5.1f}s[/dim]",
        )
        return grid


class Watch:
    """`on_progress` for `wait_until_running`, drawing on `console` (stderr: stdout stays for the answer)."""

    def __init__(self, console: Console, name: str) -> None:
        self.view = _View(name)
        self.live = Live(self.view, console=console, refresh_per_second=8, transient=True)
        self.console = console

    def __enter__(self) -> Watch:
        self.live.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.live.stop()

    def __call__(self, progress: Progress) -> None:
        self.view.status = progress.instance.status
        if progress.step is not None and progress.step != self.view.step:
            self.view.step = progress.step
            self.console.print(f"[dim]{self.elapsed_s:6.1f}s[/dim]  {step_label(progress.step)}")

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.view.started

    def done(self, instance: Instance) -> None:
        self.console.print(f"[green]{instance.name} is {instance.status}[/green] after {self.elapsed_s:.1f}s")


def while_watching(chowder: Chowder, console: Console, instance: Instance, action: Callable[[], Instance]) -> Instance:
    """Runs `action` (a call that blocks until the instance runs: start, recover) in a thread while the view
    follows the instance; the action's own answer or error is what counts."""
    result: list[Instance] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(action())
        except BaseException as exc:  # handed over to the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    with Watch(console, instance.name) as watch:
        worker.start()
        while worker.is_alive():
            with contextlib.suppress(ChowderError):  # the action's own outcome says what went wrong
                watch(chowder.instances.progress(instance.id))
            worker.join(timeout=0.5)
    if failure:
        raise failure[0]
    watch.done(result[0])
    return result[0]
