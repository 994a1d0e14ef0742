"""The seccomp filter every sandbox process runs under, loaded by bwrap (`--seccomp FD`) just before the exec.

The tenant runs arbitrary code, so the kernel's own code is what it attacks once namespaces and its uid hold.
The filter takes away the syscalls that widen that surface: creating user namespaces (they hand out capabilities
over fresh namespaces, the start of many kernel exploits), mounts, kernel keyrings, tracing other processes, bpf,
perf, io_uring, userfaultfd, module and kexec loading, host administration. That is what Docker's default profile
refuses a container without capabilities, plus ptrace and process_vm_readv/writev (which it allows), plus
Flatpak's rules (the main user of bubblewrap) on terminal injection and socket families. bwrap's
`--disable-userns`, where this bwrap has it, closes user namespaces a second time.

A denylist, not Docker's allowlist: Node and whatever the agent installs must keep working on hosts newer than
this list, and a denied syscall an app relies on is worse than an allowed one nobody exploits; the trade-off is
that a syscall added to a later kernel is allowed until it is listed here.

Built with libseccomp (through the `pyseccomp` ctypes binding) rather than hand-assembled BPF: it knows each
architecture's numbers and writes the architecture check, which is where hand-written filters go wrong. Only the
native architecture is in the filter, so anything else (i386 through `int 0x80`, x32 numbers) kills the process.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chowder.core.errors import ProviderError
from chowder.sandbox.isolation import Isolation, probe

DENIED = (
    # Namespaces and mounts: the view bwrap built must stay as it is.
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "open_tree_attr",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "mount_setattr",
    # Kernel keyrings: shared kernel state with a long list of bugs, of no use to an agent.
    "add_key",
    "request_key",
    "keyctl",
    # Other processes' memory and file descriptors.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "kcmp",
    "pidfd_getfd",
    # Kernel attack surface reachable without privileges.
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "lookup_dcookie",
    "fanotify_init",
    "modify_ldt",
    "uselib",
    "ustat",
    "sysfs",
    "lsm_get_self_attr",
    "lsm_set_self_attr",
    "lsm_list_modules",
    # NUMA memory policy (Docker: CAP_SYS_NICE only).
    "mbind",
    "set_mempolicy",
    "set_mempolicy_home_node",
    "get_mempolicy",
    "migrate_pages",
    "move_pages",
    # Host administration.
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "quotactl_fd",
    "syslog",
    "vhangup",
    "settimeofday",
    "clock_settime",
    "iopl",
    "ioperm",
    "sethostname",
    "setdomainname",
)
# Syscalls from Linux 5.1 on have one number on every architecture Node runs on; libseccomp learns their names
# only in its later releases, so an older one is given the number.
_UNIFIED_NUMBERS = {
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "clone3": 435,
    "pidfd_getfd": 438,
    "process_madvise": 440,
    "mount_setattr": 442,
    "quotactl_fd": 443,
    "set_mempolicy_home_node": 450,
    "lsm_get_self_attr": 459,
    "lsm_set_self_attr": 460,
    "lsm_list_modules": 461,
    "open_tree_attr": 467,
}
# clone(2) is how threads start, so only its namespace flags are refused (clone's first argument on every
# architecture but s390). clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back
# to clone, as under Docker.
_CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
# Pushing characters into the terminal's input (TIOCSTI) or the console (TIOCLINUX); ioctl numbers are 32 bits.
_TTY_INJECTION = (0x5412, 0x541C)
# Socket families Node and ordinary tools use (unix, IPv4, IPv6, netlink for interface lists); the rest (AF_ALG,
# AF_VSOCK, AF_TIPC…) are rarely used kernel code that exploits keep finding, refused as if not compiled in.
_SOCKET_FAMILIES = (1, 2, 10, 16)
_AF_MAX = 46
_NR_SCMP_ERROR = -1
_USERNS_FLAGS = ("--disable-userns", "--assert-userns-disabled")
_USERNS_ARGS = ("--unshare-user", *_USERNS_FLAGS)  # --unshare-all only tries a user namespace: this one insists
_PROBE_TIMEOUT_S = 10.0


def build_program() -> bytes:
    """The BPF program for this host's architecture; ImportError or RuntimeError without libseccomp."""
    import pyseccomp as sc  # here, not at import: without libseccomp the provider still starts and reports why

    rules = sc.SyscallFilter(sc.ALLOW)
    rules.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    for name in DENIED:
        rules.add_rule(sc.ERRNO(errno.EPERM), _number(sc, name))
    rules.add_rule(sc.ERRNO(errno.ENOSYS), _number(sc, "clone3"))
    for flag in _CLONE_NAMESPACE_FLAGS:
        rules.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    for request in _TTY_INJECTION:
        rules.add_rule(sc.ERRNO(errno.EPERM), "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
    refused = sc.ERRNO(errno.EAFNOSUPPORT)
    for family in range(_AF_MAX):
        if family not in _SOCKET_FAMILIES:
            rules.add_rule(refused, "socket", sc.Arg(0, sc.EQ, family))
    rules.add_rule(refused, "socket", sc.Arg(0, sc.GE, _AF_MAX))  # also any value with bits above the int
    with os.fdopen(os.memfd_create("chowder-seccomp"), "w+b") as program:
        rules.export_bpf(program)
        program.seek(0)
        return program.read()


def _number(sc: Any, name: str) -> int:
    number = sc.resolve_syscall(sc.Arch.NATIVE, name)
    if number == _NR_SCMP_ERROR:
        number = _UNIFIED_NUMBERS.get(name, _NR_SCMP_ERROR)
    if number == _NR_SCMP_ERROR:
        raise RuntimeError(f"libseccomp does not know the syscall {name} (upgrade libseccomp2)")
    return int(number)


@dataclass(frozen=True, slots=True)
class Seccomp:
    """The filter in force for new sandbox processes, or why there is none; `required` refuses to run without it."""

    program: bytes | None
    bwrap_flags: tuple[str, ...]
    note: str
    required: bool

    @contextlib.contextmanager
    def bwrap_args(self) -> Iterator[tuple[list[str], tuple[int, ...]]]:
        """bwrap's arguments and the fds to pass the child (subprocess `pass_fds`), for one spawn.

        A fresh memfd each time: bwrap reads the program from the fd's offset, which a shared fd would move.
        """
        if self.program is None:
            if self.required:
                raise ProviderError(f"Sandbox refused: no seccomp filter ({self.note}).")
            yield [], ()
            return
        fd = os.memfd_create("chowder-seccomp")  # close-on-exec: only the child it is passed to gets it
        try:
            os.write(fd, self.program)
            os.lseek(fd, 0, os.SEEK_SET)
            yield [*self.bwrap_flags, "--seccomp", str(fd)], (fd,)
        finally:
            os.close(fd)


def detect_seccomp(isolation: Isolation, mode: str, sandboxes_dir: Path, probe_uid: int) -> Seccomp:
    """Build the filter and run a sandbox under it once: only a filter seen in force is reported as such."""
    if mode == "none":
        return Seccomp(None, (), "off (isolation disabled)", required=False)
    fix = "; sandboxes refuse to start until it is fixed"
    bwrap = isolation.tools.get("bwrap")
    if bwrap is None or isolation.missing:
        why = "it is loaded by bwrap, which cannot run sandboxes here (see namespaces)"
        return Seccomp(None, (), f"NOT in force: {why}{fix}", True)
    try:
        program = build_program()
    except (ImportError, RuntimeError, OSError) as exc:
        why = f"{exc}; install libseccomp2 (Debian/Ubuntu: apt-get install libseccomp2) and pyseccomp"
        return Seccomp(None, (), f"NOT in force: {why}{fix}", True)
    flags = _USERNS_ARGS if _has_userns_flags(bwrap) else ()
    userns = ", bwrap --disable-userns" if flags else " (this bwrap has no --disable-userns)"
    note = f"in force: {len(program) // 8} BPF instructions, {len(DENIED)} syscalls + namespace clones denied{userns}"
    candidate = Seccomp(program, flags, note, True)
    error = _probe(candidate, isolation, sandboxes_dir, probe_uid)
    if error is not None:
        return Seccomp(None, (), f"NOT in force: a sandbox under it failed: {error}{fix}", True)
    return candidate


def _has_userns_flags(bwrap: str) -> bool:
    try:
        result = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return all(flag in result.stdout for flag in _USERNS_FLAGS)


def _probe(seccomp: Seccomp, isolation: Isolation, sandboxes_dir: Path, uid: int) -> str | None:
    """Run `cat /proc/self/status` the way a sandbox runs; the error text unless it shows a filter in force."""
    with seccomp.bwrap_args() as (args, fds):
        error, output = probe(isolation, ["cat", "/proc/self/status"], uid, sandboxes_dir, args, fds)
    if error is not None:
        return error
    status = dict(line.split(":\t", 1) for line in output.splitlines() if ":\t" in line)
    if status.get("Seccomp", "").strip() != "2":
        return f"/proc/self/status shows Seccomp: {status.get('Seccomp', '?').strip()}, not 2 (filter)"
    return None
