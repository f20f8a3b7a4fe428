"""What this machine can do for containers, and why not when it cannot.

``container-lab doctor`` prints it; lessons read :func:`diagnose` to decide
whether a step can really run (a fork bomb is only a lesson where a pids
limit is applied) or must explain instead. Each check is a few reads of
/proc and /sys: no container is started.

The result is plain data (schema :data:`VERSION`)::

    {"version": 1, "ok": true, "checks": [
        {"id": "cgroup.memory", "ok": true, "detail": "v1: memory.limit_in_bytes"}, ...],
     "limits": {"memory": true, "pids": true, "cpu": true, "swap": true},
     "cgroup": "v1", "root": true, "kernel": "6.1.0"}

``ok`` says whether containers can run at all here (root, overlayfs, the
namespaces); a missing limit is reported, not fatal.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

from . import sealed
from .namespaces import KINDS as NAMESPACES
from .seccomp import program, refused

VERSION = 1
LIMITS = ("memory", "pids", "cpu", "swap")
REQUIRED = ("root", "overlayfs", "ns.pid", "ns.mnt", "ns.uts", "ns.ipc", "ns.net", "exe.sealed")


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def diagnose() -> dict:
    """Look at this machine; never raises."""
    checks: list[dict] = []

    def check(cid: str, ok: bool, detail: str) -> None:
        checks.append({"id": cid, "ok": bool(ok), "detail": detail})

    root = os.geteuid() == 0
    check("root", root, "running as root" if root else
          "not root: containers need root for now (rootless mode is not built yet); use sudo")
    kernel = os.uname().release
    check("kernel", True, f"Linux {kernel}")
    filesystems = _read("/proc/filesystems") or ""
    overlay = any(line.split()[-1:] == ["overlay"] for line in filesystems.splitlines())
    check("overlayfs", overlay, "overlayfs is available" if overlay else
          "overlayfs is not in /proc/filesystems (try: modprobe overlay)")
    for kind in NAMESPACES:
        have = os.path.exists(f"/proc/self/ns/{kind}")
        check(f"ns.{kind}", have, f"{kind} namespaces are available" if have else
              f"this kernel has no {kind} namespaces")
    max_userns = _read("/proc/sys/user/max_user_namespaces")
    userns = max_userns is not None and max_userns != "0"
    check("userns.private", userns and root, "--userns private works" if userns and root else
          "--userns private needs root and user namespaces (user.max_user_namespaces is "
          f"{max_userns or 'missing'})")
    # A classroom seat (container-lab serve sets CONTAINER_LAB_SEAT for its app): the
    # engine refuses it the server's namespaces and paths; the app skips the steps
    # that need them, saying why. Only what the app shows depends on this: the
    # supervisor decides from the connection's peer, whatever the environment says.
    seat = os.environ.get("CONTAINER_LAB_SEAT")
    check("host.access", not seat, "host namespaces and host paths can be given to containers" if not seat else
          f"a classroom seat ({seat[:32]}): host namespaces, host mounts and seccomp=unconfined are the server's, "
          "not a seat's")

    machine = os.uname().machine
    filters = os.path.exists("/proc/sys/kernel/seccomp/actions_avail")
    table = program(machine) is not None
    check("seccomp", filters and table,
          f"a system call filter: {len(refused(machine))} calls Docker's default profile refuses are refused"
          if filters and table else
          "this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER): containers run without one" if not filters
          else f"no system call table for {machine}: containers run without a filter")

    try:
        fd = sealed.sealed_copy("/proc/self/exe", "doctor")
        os.close(fd)
        check("exe.sealed", True, "the supervisor runs from a sealed in-memory copy of its interpreter: "
              "no container process can reach the host's (CVE-2019-5736)")
    except OSError as e:
        check("exe.sealed", False, f"no sealed in-memory copy of an executable (memfd_create with seals): "
              f"{e.strerror or e}: the supervisor cannot start")
    init = sealed.find_init()
    check("init", init is not None, f"--init runs tini ({init}) from a sealed in-memory copy" if init
          else sealed.INIT_MISSING)

    try:
        from . import paths, quota

        data = os.path.abspath(paths.data_path())
        while not os.path.exists(data):        # not made yet: where it will be
            data = os.path.dirname(data)
        bounded, why = quota.support(data)
    except Exception as e:  # noqa: BLE001 - a diagnosis must never fail
        bounded, why = False, f"cannot tell: {e}"
    check("storage.quota", bounded,
          f"writable layers can be bounded (--storage-opt size): {why}" if bounded else
          f"writable layers cannot be bounded here (--storage-opt size is refused): {why}")

    check("network.bridge", *_network_support(root))

    limits = dict.fromkeys(LIMITS, False)
    layout = "none"
    try:
        from .cgroups import detect

        driver = detect()
        layout = driver.name
        why = driver.why_not()
        for limit in LIMITS:
            limits[limit] = limit not in why
            reason = why.get(limit, "")
            check(f"cgroup.{limit}", limits[limit],
                  f"{layout}: {limit} limits are applied" if limits[limit] else
                  f"{limit} limits cannot be applied: {reason or 'no controller'}")
    except Exception as e:  # noqa: BLE001 - a diagnosis must never fail
        for limit in LIMITS:
            check(f"cgroup.{limit}", False, f"cannot read the cgroup setup: {e}")
    ok = all(c["ok"] for c in checks if c["id"] in REQUIRED)
    return {"version": VERSION, "ok": ok, "checks": checks, "limits": limits, "cgroup": layout,
            "root": root, "kernel": kernel}


def _network_support(root: bool) -> tuple[bool, str]:
    """Whether containers get the default bridge network (else a loopback only, with a warning)."""
    def installed(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, OSError, ValueError):
            return False

    if not root:
        return False, ("containers get a loopback device only (as --network none): networks need root "
                       "(the engine makes bridges, veth pairs and nftables rules)")
    missing = [what for what, ok in (
        ("the nft command (install nftables)", shutil.which("nft") is not None),
        ("pyroute2 (pip install pyroute2)", installed("pyroute2")),
        ("dnspython (pip install dnspython)", installed("dns")),
    ) if not ok]
    if missing:
        return False, ("containers get a loopback device only (as --network none); networks need "
                       + ", ".join(missing))
    return True, "containers get the default bridge network: an address, names, published ports (-p)"
