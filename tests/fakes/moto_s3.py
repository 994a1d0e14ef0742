"""A local S3-compatible server for the backup store's tests: moto in server mode on 127.0.0.1, from its own
virtual environment (`./dev test` makes it: moto needs botocore, which cannot be installed beside the pinned
kubernetes client). It speaks S3's real protocol and, with authentication on, checks every request's SigV4
signature against the credentials of an IAM user made here (the only three requests it takes unsigned)."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
MOTO_SERVER = Path(
    os.environ.get("CHOWDER_TEST_MOTO_SERVER", REPO / ".chowder" / "tools" / "moto" / "bin" / "moto_server")
)
_ALLOW_ALL = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
# moto routes an unauthenticated request by the service its Authorization names; the signature is not checked.
_UNCHECKED = "AWS4-HMAC-SHA256 Credential=setup/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0"


@dataclass(frozen=True)
class S3Server:
    url: str
    access_key: str
    secret_key: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _iam(url: str, **form: str) -> str:
    response = httpx.post(f"{url}/", data={**form, "Version": "2010-05-08"}, headers={"Authorization": _UNCHECKED})
    assert response.status_code == 200, response.text
    return response.text


@contextlib.contextmanager
def moto_s3() -> Iterator[S3Server]:
    """The server and a user's credentials, for the block; skips (saying how to get it) when moto is missing."""
    if not MOTO_SERVER.exists():
        pytest.skip(f"moto_server not found at {MOTO_SERVER}; `./dev test` installs it")
    port = _free_port()
    env = {"PATH": "/usr/bin:/bin", "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    command = [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"
        _iam(url, Action="CreateUser", UserName="chowder")
        _iam(url, Action="PutUserPolicy", UserName="chowder", PolicyName="all", PolicyDocument=_ALLOW_ALL)
        created = _iam(url, Action="CreateAccessKey", UserName="chowder")
        access_key = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", created)
        secret_key = re.search(r"<SecretAccessKey>([^<]+)</SecretAccessKey>", created)
        assert access_key is not None and secret_key is not None
        yield S3Server(url, access_key.group(1), secret_key.group(1))
    finally:
        process.terminate()
        process.wait(10)
