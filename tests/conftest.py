"""Shared fixtures: settings on a fresh database (SQLite, or PostgreSQL when CHOWDER_TEST_DATABASE_URL
names a server), and data dirs no sandbox uid can traverse (as under a 0700 home)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.docker_engine import EngineMissing, docker_engine, gateway_image
from tests.fakes.kube_api import FakeKubernetes
from tests.fakes.outside import outside_network
from tests.providers.real_cluster import RealCluster

REPO = Path(__file__).resolve().parent.parent
SHARED_RUNTIME = Path(os.environ.get("CHOWDER_RUNTIME_DIR", REPO / ".chowder" / "runtime"))


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """A real Docker engine with the gateway image, as DOCKER_HOST (set for the session, for the docker provider)."""
    try:
        with docker_engine(REPO) as url:
            gateway_image(url, SHARED_RUNTIME)
            before = os.environ.get("DOCKER_HOST")
            os.environ["DOCKER_HOST"] = url
            yield url
            if before is None:
                del os.environ["DOCKER_HOST"]
    except EngineMissing as missing:
        pytest.skip(f"docker provider: {missing}")


@pytest.fixture(scope="session")
def kube_cluster(request: pytest.FixtureRequest) -> Iterator[FakeKubernetes | RealCluster]:
    """A cluster named by KUBECONFIG for the session, as a user's kubeconfig names one: the fake API server, its
    pods run in the tests' engine; or, opted in with CHOWDER_TEST_KUBECONFIG, that real cluster (namespace
    CHOWDER_TEST_KUBE_NAMESPACE, default chowder-test, which must exist)."""
    before = os.environ.get("KUBECONFIG")
    config_dir = Path(tempfile.mkdtemp(prefix="chowder-kube-", dir="/tmp"))
    try:
        if real := os.environ.get("CHOWDER_TEST_KUBECONFIG"):
            os.environ["KUBECONFIG"] = str(Path(real).expanduser())
            yield RealCluster(os.environ.get("CHOWDER_TEST_KUBE_NAMESPACE", "chowder-test"))
        else:
            engine = docker.DockerClient(base_url=request.getfixturevalue("docker_host"))
            with FakeKubernetes(engine) as cluster:
                os.environ["KUBECONFIG"] = str(cluster.write_kubeconfig(config_dir / "config"))
                yield cluster
    finally:
        if before is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = before
        shutil.rmtree(config_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def outside() -> Iterator[str]:
    """The tests' stand-in for the internet (a namespace of their own), made once for every test that needs it:
    made again while a socket bound there still holds the old one, its route would still be taken. Its address."""
    with outside_network() as address:
        yield address


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Mode 0700, as a data dir under root's home is: no sandbox uid may need to traverse it."""
    path = Path(tempfile.mkdtemp(prefix="chowder-test-", dir="/tmp"))
    yield path
    release_networks_below(path)
    unmount_below(path)
    shutil.rmtree(path, ignore_errors=True)


def release_networks_below(path: Path) -> None:
    """Remove the network namespaces and veths of sandboxes a test left below `path` (host-wide kernel objects
    that deleting the directory would not free). Deleting the veth first frees its name at once."""
    for meta_file in path.glob("sandboxes/*/meta.json"):
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, ValueError):
            continue
        if meta.get("net_index") is not None:
            subprocess.run(["ip", "link", "delete", f"chw{meta['net_index']}"], capture_output=True)
        subprocess.run(["ip", "netns", "delete", f"chowder-{meta['sandbox_id']}"], capture_output=True)


def unmount_below(path: Path) -> None:
    """Detach what a failed test left mounted below `path` (sandbox disk images), deepest first.

    Lazily: a mount still busy is gone from the tree at once, and its loop device is freed when it is released.
    """
    prefix = f"{path.resolve()}/"
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mountpoint in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mountpoint], check=False, capture_output=True)


@pytest.fixture
def database_url(data_dir: Path) -> Iterator[str]:
    """A brand-new database per test: a SQLite file, or a fresh PostgreSQL database that is dropped after."""
    server = os.environ.get("CHOWDER_TEST_DATABASE_URL")
    if not server:
        yield f"sqlite:///{data_dir / 'chowder.db'}"
        return
    name = f"chowder_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
