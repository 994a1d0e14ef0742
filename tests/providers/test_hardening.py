"""The `process` provider's hardening, tried for real: from inside sandboxes, and on the host's cgroups and mounts."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chowder.core.settings import Settings
from chowder.sandbox.diskquota import IMAGE
from chowder.sandbox.process import ProcessProvider
from chowder.sandbox.seccomp import _UNIFIED_NUMBERS, build_program
from tests.conftest import unmount_below
from tests.providers.harness import (
    NODE,
    REPO,
    destroyed_after,
    launch_idle,
    make_settings,
    marked_processes,
    marker,
    required_as_root,
    run,
    spec_for,
    status_line,
)

ENV = {"PATH": "/usr/bin:/bin"}


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    """A small disk quota, filled in a moment; own port window and uid base, as in the contract tests."""
    port, uid = random.randrange(21000, 32000, 100), 260000 + random.randrange(0, 30000, 100)
    return make_settings(data_dir, port, uid, sandbox_disk_mb=64)


@pytest.fixture
def provider(settings: Settings) -> Iterator[ProcessProvider]:
    """Every sandbox is destroyed afterwards (processes, cgroups, mounts); `data_dir` unmounts any leftover."""
    if os.geteuid() != 0:
        pytest.skip("disk quotas and per-sandbox uids need root; without it sandboxes refuse to start")
    yield from destroyed_after(ProcessProvider(settings))


def in_sandbox(provider: ProcessProvider, sandbox_id: str, argv: list[str]) -> tuple[int, str, str]:
    result = run(provider.exec(sandbox_id, argv, ENV, 30))
    return result.exit_code, result.stdout, result.stderr


def test_parent_cgroup_caps_all_sandboxes_together(provider: ProcessProvider, settings: Settings) -> None:
    required_as_root(provider.cgroups.available, f"cgroups not writable here: {provider.cgroups.note}")
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").open() if line.startswith("MemTotal:"))
    memory = memory_kb * 1024 - (settings.host_reserved_mb << 20)
    host_pids = min(int(Path(f"/proc/sys/kernel/{name}").read_text()) for name in ("pid_max", "threads-max"))
    expected = {
        "v1": {"memory.limit_in_bytes": memory // 4096 * 4096, "cpu.shares": 512, "pids.max": host_pids * 3 // 4},
        "v2": {"memory.max": memory // 4096 * 4096, "cpu.weight": 50, "pids.max": host_pids * 3 // 4},
    }[provider.cgroups.version]
    parents = {directory.parent for directory in provider.cgroups.dirs("any")}
    for file, value in expected.items():
        (found,) = [parent / file for parent in parents if (parent / file).exists()]
        assert int(found.read_text()) == value, file
    assert all(parent.name == "chowder" for parent in parents)


SIGSYS_EXIT = 128 + 31
# Each line: the name, the errno the syscall fails with (0: it works). x86_64 numbers.
SYSCALLS_PY = r"""
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
def call(number, *args):
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    return ctypes.get_errno() if result == -1 else 0
params = ctypes.create_string_buffer(120)
print(json.dumps({
    "unshare(CLONE_NEWUSER)": call(272, 0x10000000),
    "clone3": call(435, 0, 0),
    "mount": call(165, 0, 0, 0, 0, 0),
    "setns": call(308, 0, 0),
    "keyctl(GET_KEYRING_ID)": call(250, 0, -3, 0),
    "add_key": call(248, 0, 0, 0, 0, 0),
    "ptrace(TRACEME)": call(101, 0, 0, 0, 0),
    "process_vm_readv": call(310, os.getppid(), 0, 0, 0, 0, 0),
    "bpf": call(321, 0, 0, 0),
    "perf_event_open": call(298, 0, 0, -1, -1, 0),
    "io_uring_setup": call(425, 1, ctypes.addressof(params)),
    "userfaultfd": call(323, 0),
    "socket(AF_ALG)": call(41, 38, 5, 0),
    "socket(AF_VSOCK)": call(41, 40, 1, 0),
    "socket(AF_INET)": call(41, 2, 1, 0),
    "getpid": call(39),
}))
"""
DENIED = {
    "unshare(CLONE_NEWUSER)": 1,  # EPERM from the filter; bwrap's --disable-userns alone would say ENOSPC
    "clone3": 38,  # ENOSYS: libc falls back to clone
    "mount": 1,
    "setns": 1,
    "keyctl(GET_KEYRING_ID)": 1,
    "add_key": 1,
    "ptrace(TRACEME)": 1,
    "process_vm_readv": 1,
    "bpf": 1,
    "perf_event_open": 1,
    "io_uring_setup": 1,
    "userfaultfd": 1,
    "socket(AF_ALG)": 97,  # EAFNOSUPPORT
    "socket(AF_VSOCK)": 97,
    "socket(AF_INET)": 0,
    "getpid": 0,
}
# A foreign architecture's syscall: i386's getpid through `int 0x80`, then x32's getpid.
FOREIGN_PY = r"""
import ctypes, mmap, sys
print("before", flush=True)
if sys.argv[1] == "i386":
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3]))  # mov eax, 20; int 0x80; ret
    print(ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))(), flush=True)
else:
    print(ctypes.CDLL(None).syscall(ctypes.c_long(0x40000000 | 39)), flush=True)
print("after", flush=True)
"""
WORKER_JS = """
const { Worker } = require('worker_threads');
const worker = new Worker('require("worker_threads").parentPort.postMessage(6 * 7)', { eval: true });
worker.on('message', (answer) => {
  require('child_process').exec('echo child', (error, out) => {
    const status = require('fs').readFileSync('/proc/self/status', 'utf8');
    console.log(JSON.stringify({ answer, child: out.trim(), seccomp: /Seccomp:\\s+(\\d)/.exec(status)[1] }));
  });
});
"""


def python3() -> str:
    """The host's own Python, visible inside through the read-only /usr."""
    if not Path("/usr/bin/python3").exists():
        pytest.skip("no /usr/bin/python3 to make raw syscalls from inside the sandbox")
    if platform.machine() != "x86_64":
        pytest.skip("the syscall numbers and machine code here are x86_64's")
    return "/usr/bin/python3"


def exe(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return None


def test_seccomp_refuses_namespaces_mounts_keyrings_tracing_and_kernel_surface(provider: ProcessProvider) -> None:
    interpreter = python3()
    run(provider.create(spec_for("jail")))
    code, _, err = in_sandbox(provider, "jail", ["unshare", "-U", "true"])
    assert code != 0 and "Operation not permitted" in err
    code, _, err = in_sandbox(provider, "jail", ["sh", "-c", "mkdir -p /tmp/y && mount -t tmpfs x /tmp/y"])
    assert code != 0
    code, out, err = in_sandbox(provider, "jail", [interpreter, "-c", SYSCALLS_PY])
    assert code == 0, err
    assert json.loads(out) == DENIED


def test_unified_numbers_agree_with_libseccomp_where_it_knows_the_name() -> None:
    """The fallback numbers for syscalls an older libseccomp cannot name: checked against a newer one's."""
    import pyseccomp

    known = {name: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) for name in _UNIFIED_NUMBERS}
    assert {name: number for name, number in known.items() if number != -1} == {
        name: _UNIFIED_NUMBERS[name] for name, number in known.items() if number != -1
    }
    assert len(build_program()) % 8 == 0


@pytest.mark.parametrize("kind", ["i386", "x32"])
def test_seccomp_kills_other_architectures_syscalls(provider: ProcessProvider, kind: str) -> None:
    """Outside a sandbox the same code survives (i386: returns a pid; x32: ENOSYS on kernels without x32)."""
    interpreter = python3()
    outside = subprocess.run([interpreter, "-c", FOREIGN_PY, kind], capture_output=True, text=True, timeout=30)
    if "after" not in outside.stdout:
        pytest.skip(f"{kind} syscalls fail outside a sandbox too (exit {outside.returncode}): no emulation here")
    run(provider.create(spec_for("foreign")))
    code, out, _ = in_sandbox(provider, "foreign", [interpreter, "-c", FOREIGN_PY, kind])
    assert (code, out.split()) == (SIGSYS_EXIT, ["before"])


def test_node_threads_and_children_run_under_the_filter(provider: ProcessProvider) -> None:
    """Node starts threads with clone3 first: ENOSYS must make glibc fall back to clone, as it does."""
    info = run(provider.create(spec_for("node")))
    code, out, err = in_sandbox(provider, "node", [str(NODE), "-e", WORKER_JS])
    assert code == 0, err
    assert json.loads(out) == {"answer": 42, "child": "child", "seccomp": "2"}
    run(provider.start("node", launch_idle(info)))  # the long-running process gets the filter as well
    deadline = time.monotonic() + 10
    while not (apps := [pid for pid in marked_processes(marker(info)) if exe(pid) == NODE.resolve()]):
        assert time.monotonic() < deadline, "the app never started"
        time.sleep(0.05)
    assert status_line(apps[0], "Seccomp") == "2" and status_line(apps[0], "NoNewPrivs") == "1"


def mount_options(path: Path) -> set[str]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(path):
            return set(fields[5].split(","))
    return set()


def loop_device_of(image: Path) -> str | None:
    """The loop device backed by `image`, read from sysfs (independent of our code)."""
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        if backing.read_text().strip().removesuffix(" (deleted)") == str(image):
            return backing.parts[3]
    return None


def test_disk_quota_ends_in_enospc_while_others_keep_writing(provider: ProcessProvider, data_dir: Path) -> None:
    full = run(provider.create(spec_for("full")))
    run(provider.create(spec_for("other")))
    fill = ["dd", "if=/dev/zero", f"of={full.root}/big", "bs=1M", "count=100"]
    code, _, err = in_sandbox(provider, "full", fill)
    assert code != 0 and "No space left on device" in err
    code, out, _ = in_sandbox(provider, "full", ["df", "-m", "--output=size", "."])
    assert code == 0 and int(out.split()[-1]) <= 64
    code, _, err = in_sandbox(provider, "other", ["dd", "if=/dev/zero", "of=ok", "bs=1M", "count=8"])
    assert code == 0, err
    (data_dir / "control-plane.bin").write_bytes(bytes(8 << 20))
    run(provider.write_file("other", "notes.txt", b"still writable"))
    assert run(provider.read_file("other", "notes.txt", max_bytes=1024)) == b"still writable"


def test_disk_image_outlives_stop_restart_and_reboot_and_goes_with_destroy(
    provider: ProcessProvider, settings: Settings
) -> None:
    info = run(provider.create(spec_for("kept")))
    sandbox_dir = settings.data_dir.resolve() / "sandboxes" / "kept"
    box, image = sandbox_dir / "box", sandbox_dir / IMAGE
    assert os.path.ismount(box) and image.stat().st_mode & 0o777 == 0o600
    assert image.stat().st_blocks * 512 < 8 << 20, "sparse: the quota is not taken from the host up front"
    assert mount_options(box) >= {"nosuid", "nodev"}
    assert box.stat().st_uid == Path(info.root).stat().st_uid and box.stat().st_mode & 0o777 == 0o700
    run(provider.write_file("kept", "state.txt", b"kept"))

    run(provider.start("kept", launch_idle(info)))
    run(provider.stop("kept", grace_s=5))
    assert ProcessProvider(settings).isolation_report()["disk quota"].startswith("in force")  # a restart
    assert os.path.ismount(box)
    subprocess.run(["umount", str(box)], check=True)  # what a host reboot leaves: the image, not the mount
    assert not os.path.ismount(box) and not any(box.iterdir())
    run(provider.start("kept", launch_idle(info)))
    assert os.path.ismount(box) and run(provider.read_file("kept", "state.txt", max_bytes=1024)) == b"kept"

    assert loop_device_of(image) is not None
    run(provider.destroy("kept"))
    assert not sandbox_dir.exists() and loop_device_of(image) is None
    assert not any(str(sandbox_dir) in line for line in Path("/proc/self/mountinfo").read_text().splitlines())


def test_a_sandbox_made_before_disk_quotas_moves_onto_an_image_keeping_its_files(
    provider: ProcessProvider, settings: Settings
) -> None:
    info = run(provider.create(spec_for("older")))
    run(provider.write_file("older", "notes/kept.txt", b"from before"))
    sandbox_dir = settings.data_dir.resolve() / "sandboxes" / "older"
    box, image = sandbox_dir / "box", sandbox_dir / IMAGE
    plain = sandbox_dir / "plain"  # the box as a plain directory, as every sandbox was before quotas
    subprocess.run(["cp", "-a", f"{box}/.", str(plain)], check=True)
    subprocess.run(["umount", str(box)], check=True)
    image.unlink()
    box.rmdir()
    plain.rename(box)

    run(provider.start("older", launch_idle(info)))
    assert os.path.ismount(box) and image.exists() and not (sandbox_dir / "box.before-quota").exists()
    assert run(provider.read_file("older", "notes/kept.txt", max_bytes=1024)) == b"from before"
    assert (box / "root" / "notes" / "kept.txt").stat().st_uid == Path(info.root).stat().st_uid


NON_ROOT_CONTROL_PLANE = """
import asyncio, json, sys
from pathlib import Path
from chowder.core.errors import ProviderError
from tests.providers.harness import make_settings, spec_for
from chowder.sandbox.process import ProcessProvider

provider = ProcessProvider(make_settings(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
try:
    asyncio.run(provider.create(spec_for("refused")))
    error = None
except ProviderError as exc:
    error = str(exc)
print(json.dumps({"report": provider.isolation_report(), "error": error}))
"""


def test_without_loop_mounts_sandboxes_refuse_to_be_created(settings: Settings, data_dir: Path) -> None:
    """A control plane that cannot mount (not root) refuses sandboxes, saying why and how to fix it."""
    if os.geteuid() != 0:
        pytest.skip("needs root to start a non-root control plane")
    uid = settings.sandbox_uid_base - 1
    os.chown(data_dir, uid, uid)
    argv = [sys.executable, "-c", NON_ROOT_CONTROL_PLANE, str(data_dir), str(settings.gateway_port_min), "300000"]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    child = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environment,
        timeout=60,
    )
    if "ModuleNotFoundError" in child.stderr or "Permission denied" in child.stderr:
        pytest.skip(f"this Python or checkout is not readable by other uids: {child.stderr.strip()[-200:]}")
    assert child.returncode == 0, child.stderr
    outcome: dict[str, Any] = json.loads(child.stdout)
    assert outcome["report"]["disk quota"].startswith("NOT in force: the control plane does not run as root")
    error = outcome["error"] or ""
    assert "disk quota: the control plane does not run as root" in error and "CHOWDER_SANDBOX_ISOLATION=none" in error
    assert not (data_dir / "sandboxes" / "refused" / IMAGE).exists()


def test_unmount_below_cleans_what_a_failed_test_left(data_dir: Path) -> None:
    """The `data_dir` fixture's safety net, exercised: a mount left below the data dir is detached."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting needs root")
    target = data_dir / "left" / "behind"
    target.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "leftover", str(target)], check=True)
    unmount_below(data_dir)
    assert not os.path.ismount(target)


def test_report_lists_each_mechanism_in_force(provider: ProcessProvider) -> None:
    report = provider.isolation_report()
    for mechanism in ("user", "namespaces", "cgroups", "parent cgroup", "seccomp", "disk quota", "network"):
        assert report[mechanism].startswith("in force"), report
    assert "REFUSING" not in report and "WARNING" not in report
    assert "--disable-userns" in report["seccomp"] and "64 MB" in report["disk quota"]


def test_isolation_none_has_no_filter_nor_image(data_dir: Path) -> None:
    settings = make_settings(data_dir, random.randrange(21000, 32000, 100), 260000, sandbox_isolation="none")
    provider = ProcessProvider(settings)
    report = provider.isolation_report()
    assert report["seccomp"].startswith("off") and report["disk quota"].startswith("off")

    async def scenario() -> None:
        await provider.create(spec_for("plain"))
        assert not (data_dir / "sandboxes" / "plain" / IMAGE).exists()
        result = await provider.exec("plain", ["grep", "Seccomp:", "/proc/self/status"], ENV, 10)
        assert result.stdout.split() == ["Seccomp:", "0"]
        await provider.destroy("plain")

    asyncio.run(scenario())
