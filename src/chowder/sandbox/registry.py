"""Provider selection: `settings.sandbox_provider` names one factory here."""

from __future__ import annotations

from collections.abc import Callable

from chowder.core.settings import Settings
from chowder.sandbox.base import SandboxProvider
from chowder.sandbox.process import ProcessProvider


def _docker(settings: Settings) -> SandboxProvider:
    """Imported only when chosen: the engine's client is not needed otherwise."""
    from chowder.sandbox.docker.provider import DockerProvider

    return DockerProvider(settings)


def _kubernetes(settings: Settings) -> SandboxProvider:
    """Imported only when chosen, as the engine's client is."""
    from chowder.sandbox.kubernetes.provider import KubernetesProvider

    return KubernetesProvider(settings)


_FACTORIES: dict[str, Callable[[Settings], SandboxProvider]] = {
    "process": ProcessProvider,
    "docker": _docker,
    "kubernetes": _kubernetes,
}


def make_provider(settings: Settings) -> SandboxProvider:
    """The configured provider; an unknown name fails with the list of supported ones."""
    factory = _FACTORIES.get(settings.sandbox_provider)
    if factory is None:
        supported = ", ".join(sorted(_FACTORIES))
        raise ValueError(f"Unknown sandbox provider {settings.sandbox_provider!r}; supported: {supported}.")
    return factory(settings)
