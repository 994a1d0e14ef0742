"""The host-side check of an untrusted backup archive before anything of it enters a sandbox, and the restored
config's clean-up: OpenClaw's own archive passes; traversal, absolute or escaping links, special files, state outside
the state dir and oversize archives are refused by name; no key of the control plane's and, for another instance's
state, no channel or hook survives."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from chowder.core.errors import BadRequest
from chowder.runtime.openclaw.restore import PARTS_DIR, SWAP_SCRIPT, check_archive, restored_config, swap_args, work_dir
from tests.conftest import SHARED_RUNTIME

ROOT = "2026-12-05T01-23-20.629+00-00-openclaw-backup"
STATE = f"{ROOT}/payload/posix/sandbox/root"


def _manifest(assets: list[dict[str, str]] | None = None) -> bytes:
    assets = assets or [{"kind": "state", "sourcePath": "/sandbox/root", "archivePath": STATE}]
    return json.dumps({"schemaVersion": 1, "archiveRoot": ROOT, "assets": assets}).encode()


def _archive(path: Path, *entries: tarfile.TarInfo | tuple[str, bytes], manifest: bytes | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for entry in (*entries, (f"{ROOT}/manifest.json", manifest or _manifest())):
            if isinstance(entry, tarfile.TarInfo):
                archive.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                archive.addfile(info, io.BytesIO(entry[1]))
    return path


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _special(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.FIFOTYPE
    return info


def test_openclaws_own_archive_passes_with_its_state_dir_located(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "workspace").mkdir(parents=True)
    (state / "openclaw.json").write_text('{"gateway": {"mode": "local"}}')
    (state / "workspace" / "notes.txt").write_text("hello")
    (state / "workspace" / "link").symlink_to("notes.txt")
    node = SHARED_RUNTIME / "node" / "bin" / "node"
    entry = next(SHARED_RUNTIME.glob("openclaw-*/node_modules/openclaw/openclaw.mjs"), None)
    if not node.exists() or entry is None:
        pytest.skip("no OpenClaw runtime installed (chowder runtime install)")
    env = {
        "OPENCLAW_STATE_DIR": str(state),
        "OPENCLAW_CONFIG_PATH": str(state / "openclaw.json"),
        "HOME": str(tmp_path),
    }
    (tmp_path / "out").mkdir()
    made = subprocess.run(
        [str(node), str(entry), "backup", "create", "--output", str(tmp_path / "out"), "--json"],
        env={**env, "PATH": "/usr/bin:/bin", "OPENCLAW_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    archive = Path(json.loads(made.stdout)["archivePath"])
    layout = check_archive(archive, 1024 * 1024)
    assert layout.source == str(state) and layout.state.endswith(f"/payload/posix{state}")
    assert layout.unpacked_bytes > 0
    with pytest.raises(BadRequest, match="unpacks to more than 0 MiB"):
        check_archive(archive, 10)


@pytest.mark.parametrize(
    ("entry", "refusal"),
    [
        ((f"{ROOT}/../escape", b"x"), "a path outside its root"),
        (("/etc/passwd", b"x"), "a path outside its root"),
        ((f"{STATE}/../../../outside", b"x"), "a path outside its root"),
        ((f"{ROOT}/payload/posix/elsewhere/file", b"x"), "an entry outside the state directory"),
        (_link(f"{STATE}/workspace/passwd", "/etc/passwd"), "a link to an absolute path"),
        (_link(f"{STATE}/workspace/up", "../../../../.."), "a link leaving the state directory"),
        (_link(f"{STATE}/hard", f"{ROOT}/manifest.json", tarfile.LNKTYPE), "a link leaving the state directory"),
        (_special(f"{STATE}/fifo"), "a special file"),
    ],
)
def test_an_unsafe_archive_is_refused_naming_what_it_holds(
    tmp_path: Path, entry: tarfile.TarInfo | tuple[str, bytes], refusal: str
) -> None:
    archive = _archive(tmp_path / "a.tar.gz", (f"{STATE}/openclaw.json", b"{}"), entry)
    with pytest.raises(BadRequest, match=refusal):
        check_archive(archive, 1024 * 1024)


def test_links_inside_the_state_dir_pass(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "a.tar.gz",
        (f"{STATE}/workspace/notes.txt", b"x"),
        _link(f"{STATE}/workspace/again", "notes.txt"),
        _link(f"{STATE}/workspace/sub", "../openclaw.json"),
    )
    assert check_archive(archive, 1024).state == STATE


def test_state_outside_the_state_dir_or_no_manifest_is_refused(tmp_path: Path) -> None:
    outside = _manifest(
        [
            {"kind": "state", "archivePath": STATE},
            {"kind": "workspace", "archivePath": f"{ROOT}/payload/posix/ws"},
        ]
    )
    with pytest.raises(BadRequest, match="exactly the state directory"):
        check_archive(_archive(tmp_path / "a.tar.gz", (f"{STATE}/x", b"x"), manifest=outside), 1024)
    (tmp_path / "plain.tar.gz").write_bytes(b"not gzip at all")
    with pytest.raises(BadRequest, match="not a readable archive"):
        check_archive(tmp_path / "plain.tar.gz", 1024)


def test_the_restored_config_keeps_nothing_the_control_plane_owns_and_a_foreign_one_no_channel_or_hook() -> None:
    current = {
        "gateway": {"auth": {"mode": "token", "token": "old-secret"}, "port": 18789, "mode": "local"},
        "models": {"providers": {"anthropic": {"baseUrl": "http://old/model/anthropic"}}},
        "agents": {"defaults": {"workspace": "/old/root/workspace", "model": {"primary": "anthropic/x"}}},
        "plugins": {"entries": {"slack": {"enabled": True}, "memory-core": {"config": {}}}, "load": {"paths": ["/p"]}},
        "channels": {"telegram": {"botToken": "123:abc"}},
        "hooks": {"enabled": True, "token": "hook-secret"},
    }
    own = restored_config(current, foreign=False)
    assert "auth" not in own["gateway"] and "port" not in own["gateway"]
    assert "anthropic" not in own["models"]["providers"] and "workspace" not in own["agents"]["defaults"]
    assert own["agents"]["defaults"]["model"] == {"primary": "anthropic/x"}, "the customer's choices stay"
    assert own["channels"] == current["channels"] and own["plugins"]["entries"]["slack"] == {"enabled": True}
    assert own["plugins"]["load"] == {} and own["gateway"] == {}, "emptied: `prepare` renders this sandbox's"
    foreign = restored_config(current, foreign=True)
    assert "channels" not in foreign and "hooks" not in foreign
    assert foreign["plugins"]["entries"] == {"memory-core": {"config": {}}}
    assert "old-secret" not in json.dumps(foreign) and "hook-secret" not in json.dumps(foreign)
    assert current["gateway"]["auth"]["token"] == "old-secret", "the input is left as it was"


def _swap_step(node: Path, args: str) -> None:
    subprocess.run([str(node), "-e", SWAP_SCRIPT, args], check=True, capture_output=True, timeout=60)


def test_the_swap_replaces_the_state_dir_keeps_its_log_and_a_second_attempt_after_a_crash_ends_the_same(
    tmp_path: Path,
) -> None:
    """The sandbox-side script on this host's Node: the parts joined, the state dir's entries replaced by the
    staged ones (its `logs/` kept), the work dir gone; run again over a state dir a crash left half swapped, the
    outcome is the same."""
    node = SHARED_RUNTIME / "node" / "bin" / "node"
    if not node.exists():
        pytest.skip("no Node installed (chowder runtime install)")
    root, home = tmp_path / "root", tmp_path / "home"
    (root / "logs").mkdir(parents=True)
    (root / "logs" / "gateway.out").write_text("the instance's log")
    (root / "workspace").mkdir()
    (root / "workspace" / "later.txt").write_text("written after the backup")
    (root / "openclaw.json").write_text("{}")
    home.mkdir()

    def attempt() -> None:
        (root / PARTS_DIR).mkdir()
        (root / PARTS_DIR / "part-00000").write_bytes(b"first ")
        (root / PARTS_DIR / "part-00001").write_bytes(b"second")
        _swap_step(node, swap_args("stage", str(root), str(home)))
        work = Path(work_dir(str(home)))
        assert (work / "archive.tar.gz").read_bytes() == b"first second" and not (root / PARTS_DIR).exists()
        staged = work / "staged" / STATE  # what `openclaw backup restore` would have extracted
        (staged / "workspace").mkdir(parents=True)
        (staged / "workspace" / "notes.txt").write_text("from the backup")
        (staged / "openclaw.json").write_text('{"restored": true}')
        (staged / "logs").mkdir()
        _swap_step(node, swap_args("swap", str(root), str(home), STATE))

    attempt()
    assert sorted(p.name for p in root.iterdir()) == ["logs", "openclaw.json", "workspace"]
    assert [p.name for p in (root / "workspace").iterdir()] == ["notes.txt"]
    assert (root / "logs" / "gateway.out").read_text() == "the instance's log"
    assert not Path(work_dir(str(home))).exists()
    (root / "openclaw.json").rename(home / "moved-away")  # a crash left the state dir half swapped
    attempt()
    assert sorted(p.name for p in root.iterdir()) == ["logs", "openclaw.json", "workspace"]
    assert (root / "openclaw.json").read_text() == '{"restored": true}'
