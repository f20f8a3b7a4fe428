"""Shared test set-up: a private engine root, the CLI as a subprocess, cleanup checks.

Every test session gets its own state and data dirs (CONTAINER_LAB_ROOT) and
its own cgroup parent, so tests never touch a learner's containers, and the
session ends by shutting its supervisor down and checking that nothing of it
is left: no supervisor, no cgroup, no container dir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Short, so overlay mount options stay well inside a page.
ROOT = Path(tempfile.mkdtemp(prefix="clt-", dir="/tmp"))
CGROUP_PARENT = f"container-lab-test-{os.getpid()}"
os.environ["CONTAINER_LAB_ROOT"] = str(ROOT)
os.environ["CONTAINER_LAB_CGROUP_PARENT"] = CGROUP_PARENT
os.environ["CONTAINER_LAB_SUPERVISOR_IDLE"] = "300"
# Networks of the tests come from a range of their own (TEST-NET-like private
# space no learner's network uses); two sessions at once each take a free
# subnet of it, as two engines on one host do.
os.environ["CONTAINER_LAB_NETWORK_POOLS"] = ",".join(f"10.213.{n}.0/24" for n in range(0, 256))
# Registry settings and credentials are the session's own (registries.toml, auth.json), and
# "Docker Hub" is an address where nothing listens: no test reads a learner's settings or
# depends on the machine's network (a test that wants a Hub stands a local registry in for it).
os.environ["XDG_CONFIG_HOME"] = str(ROOT / "config")
os.environ["CONTAINER_LAB_ETC_DIR"] = str(ROOT / "etc")
os.environ["CONTAINER_LAB_HUB_ENDPOINT"] = "http://127.0.0.1:9"
# The learner's folder (progress, a lesson's files such as lesson 12's Dockerfile) is the session's own.
os.environ["CONTAINER_LAB_LEARNER_DIR"] = str(ROOT / "learner")

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root: real namespaces, overlayfs and cgroups")


def cl(*args: str, input: str | None = None, timeout: float = 60, env: dict | None = None,
       check: bool = False) -> subprocess.CompletedProcess:
    """Run ``container-lab ARGS`` (the engine's CLI) and capture its output."""
    proc = subprocess.run([sys.executable, "-m", "engine.cli", *args], input=input, text=True,
                          capture_output=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"container-lab {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def stop_engine(root: Path) -> None:
    """Stop the supervisor of a test's engine with a root of its own, and remove
    its networks (its default bridge, its nftables table): they outlive its files."""
    subprocess.run([sys.executable, "-c", "from engine.client import Client; Client(autostart=False).shutdown()"],
                   cwd=REPO, env={**os.environ, "CONTAINER_LAB_ROOT": str(root)}, timeout=60, capture_output=True)
    if IS_ROOT:
        from engine.supervisor.networks import remove_all_networks

        remove_all_networks(Path(root) / "lib")


def settle() -> None:
    """Wait until the supervisor has finished what it was doing. It tells a
    client of an exit first and tidies up right after, one thing at a time, so
    once it answers a ping, the tidying of every earlier exit is done."""
    from engine.client import Client
    from engine.errors import SupervisorError

    try:
        Client(autostart=False).ping()
    except SupervisorError:
        pass


def cgroup_dirs() -> list[str]:
    """Every cgroup directory of this test session (any hierarchy)."""
    settle()
    found = []
    for base, dirs, _files in os.walk("/sys/fs/cgroup"):
        for d in dirs:
            if d == CGROUP_PARENT:
                found.extend(str(Path(base, d, x)) for x in os.listdir(Path(base, d))
                             if Path(base, d, x).is_dir())
        if base.count("/") > 4:
            dirs[:] = []
    return found


def overlay_mounts() -> list[str]:
    """Overlay mounts on the host that belong to this test session."""
    settle()
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(ROOT) in line]


@pytest.fixture
def own_containers():
    """The test's containers removed afterwards, and nothing else (a fixture: ask for it by name)."""
    def ps():
        out = cl("ps", "-a", "--format", "json", check=True).stdout
        return {json.loads(line)["id"] for line in out.splitlines()}
    before = ps()
    yield
    for cid in ps() - before:
        cl("rm", "-f", cid)
    settle()


@pytest.fixture(scope="session")
def lab_image():
    """Build (or find) the built-in image once per session."""
    if not IS_ROOT:
        pytest.skip("needs root")
    proc = cl("images", timeout=600)     # the first call builds it: slow in the emulated v2 VM
    assert proc.returncode == 0, proc.stderr
    assert "lab" in proc.stdout
    return "lab"


def _empty_or_skipped(session) -> list[str]:
    """Reasons this run must not pass: nothing passed, or (under CI) skips."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = reporter.stats if reporter else {}
    problems = []
    if not stats.get("passed"):
        problems.append("no test passed")
    if os.environ.get("CI") and stats.get("skipped"):
        problems.append(f"{len(stats['skipped'])} test(s) skipped under CI, where every test must run")
    return problems


LEFTOVERS_ENV = "CONTAINER_LAB_TEST_LEFTOVERS"


def pure_cgroup_v2() -> bool:
    """Whether /sys/fs/cgroup is the unified hierarchy with controllers (as most machines today)."""
    try:
        return bool(Path("/sys/fs/cgroup/cgroup.controllers").read_text().split())
    except OSError:
        return False


def pytest_terminal_summary(terminalreporter):
    """Said at the end of every run here, workers or not (under pytest-xdist the
    workers deselect, and their words do not reach the terminal)."""
    if not pure_cgroup_v2() and not hasattr(terminalreporter.config, "workerinput"):
        terminalreporter.write_line("tests marked cgroup_v2 (tests/test_rootless_cgroup_v2.py) were deselected: this "
                                    "machine is not pure cgroup v2; .ci/cgroup-v2/run-in-vm runs them")


def pytest_collection_modifyitems(config, items):
    """Tests marked cgroup_v2 need what only a pure cgroup v2 kernel has (a
    delegated subtree): elsewhere they are deselected -- not skipped, and not
    counted as passed -- and the run says so; CI runs them in its v2 VM."""
    if pure_cgroup_v2():
        return
    kept = [i for i in items if i.get_closest_marker("cgroup_v2") is None]
    gone = [i for i in items if i.get_closest_marker("cgroup_v2") is not None]
    if gone:
        config.hook.pytest_deselected(items=gone)
        items[:] = kept
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"{len(gone)} cgroup v2 test(s) deselected: this machine is not pure cgroup v2 "
                                "(.ci/cgroup-v2/run-in-vm runs them)")


TUN = Path("/dev/net/tun")
_tun_mode: int | None = None


def pytest_configure(config):
    """The controller makes a directory where every session (each xdist worker
    has its own engine root) reports what of its own it could not remove, and
    notes the links and nftables tables of any engine that exist before the run.

    It also opens /dev/net/tun to users for the run, as Debian's udev does (mode
    0666; some machines keep it 0600): the rootless tests' containers reach the
    network through pasta, which needs it. The mode is put back at the end."""
    global _tun_mode
    if not hasattr(config, "workerinput") and IS_ROOT and TUN.exists():
        mode = TUN.stat().st_mode & 0o777
        if mode != 0o666:
            _tun_mode = mode
            TUN.chmod(0o666)
    if not hasattr(config, "workerinput") and LEFTOVERS_ENV not in os.environ:
        os.environ[LEFTOVERS_ENV] = tempfile.mkdtemp(prefix="clt-leftovers-", dir="/tmp")
        if IS_ROOT and shutil.which("nft"):
            Path(os.environ[LEFTOVERS_ENV], "before").write_text("\n".join(_any_engines_objects()))


def _any_engines_objects() -> list[str]:
    """Every link an engine made (its ifalias says container-lab) and every table named like ours."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines() if "alias container-lab " in line]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return found + [line.split()[-1] for line in tables.splitlines() if line.split()[-1:] and
                    line.split()[-1].startswith("container_lab")]


def _network_leftovers() -> list[str]:
    """This session's links (bridges, veth host ends, by their ifalias), its
    nftables table, and the test's client-host namespaces, if any are left."""
    from engine.network import Store
    from engine.supervisor.networks import _table_for

    owner = Store(ROOT / "lib" / "network").owner
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found = [line.split(":")[1].strip() for line in links.splitlines() if f"alias {owner}" in line]
    if subprocess.run(["nft", "list", "table", "inet", _table_for(ROOT / "lib")], capture_output=True).returncode == 0:
        found.append(f"nft table inet {_table_for(ROOT / 'lib')}")
    return [f"{ROOT}: {what}" for what in found]


def pytest_sessionfinish(session, exitstatus):
    """Shut the session's supervisor down, clean up, and never let an empty or
    skipped-everything run pass as green (a skipped test is not a passed test)."""
    from engine.client import Client

    # Under pytest-xdist each worker is a session of its own (with its own engine
    # root and cgroup parent); only the controller sees every result.
    worker = hasattr(session.config, "workerinput")
    if not worker and _tun_mode is not None:
        TUN.chmod(_tun_mode)
    if exitstatus == 0 and not worker and (problems := _empty_or_skipped(session)):
        print("\ncontainer-lab: " + "; ".join(problems), file=sys.stderr)
        session.exitstatus = 1

    Client(autostart=False).shutdown()
    if IS_ROOT:
        # The networks of this session: bridges, nft table, records (the learner's stay).
        from engine.supervisor.networks import remove_all_networks

        try:
            remove_all_networks(ROOT / "lib")
        except Exception as e:  # noqa: BLE001 - reported, and the leftover check below sees it
            print(f"\ncontainer-lab: removing the session's networks failed: {e}", file=sys.stderr)
        report = os.environ.get(LEFTOVERS_ENV)
        if report and shutil.which("nft") and (left := _network_leftovers()):
            Path(report, f"{os.getpid()}.txt").write_text("\n".join(left) + "\n")
    if not worker and (report := os.environ.get(LEFTOVERS_ENV)) and os.path.isdir(report):
        left = [line for f in sorted(Path(report).glob("*.txt")) for line in f.read_text().splitlines()]
        before = Path(report, "before")
        if before.exists() and os.environ.get("CI"):
            # Under CI nothing else runs: whatever appeared and stayed was made by a test's own
            # engine (one with a root of its own) and not removed.
            known = set(before.read_text().splitlines())
            left += [f"{what} (an engine of a test's own)" for what in _any_engines_objects() if what not in known]
        shutil.rmtree(report, ignore_errors=True)
        if left:
            print("\ncontainer-lab: left behind: " + "; ".join(left), file=sys.stderr)
            if session.exitstatus == 0:
                session.exitstatus = 1
    # The supervisor removes each container's cgroup; drop the session's parent dirs.
    for base, dirs, _files in os.walk("/sys/fs/cgroup"):
        if CGROUP_PARENT in dirs:
            try:
                os.rmdir(Path(base, CGROUP_PARENT))
            except OSError:
                pass
        if base.count("/") > 4:
            dirs[:] = []
    shutil.rmtree(ROOT, ignore_errors=True)



SUPERVISOR_LOG = ROOT / "run" / "supervisor.log"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test shows the tail of the session's supervisor log (its
    tracebacks and what it said on stderr) beside its own report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        try:
            tail = SUPERVISOR_LOG.read_bytes()[-8192:].decode("utf-8", "replace")
        except OSError:
            return
        if tail.strip():
            report.sections.append(("supervisor log (tail)", tail))
