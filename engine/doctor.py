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


def diagnose(*, registry: bool = False) -> dict:
    """Look at this machine; never raises. ``registry``: ask the course's
    registry too (``registry.course``: a request over the network, up to
    1.5 s, and an answer that changes as registries come and go -- so the
    app's diagnosis at start leaves it out, and a lesson asks it when a step
    needs it: :mod:`lessons.requirements`)."""
    checks: list[dict] = []

    def check(cid: str, ok: bool, detail: str) -> None:
        checks.append({"id": cid, "ok": bool(ok), "detail": detail})

    from . import paths

    root = paths.is_root()
    check("root", root, "running as root: every lesson, networks and limits" if root else
          "not root: containers run rootless, in a user namespace of yours (see userns.*)")
    if not root:
        _rootless_checks(check)
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
    if root or not userns:
        check("userns.private", userns and root, "--userns private works" if userns and root else
              "--userns private needs user namespaces (user.max_user_namespaces is "
              f"{max_userns or 'missing'})")
    else:
        check("userns.private", False, "without root every container runs in a user namespace of yours "
              "already (root inside is you outside): none shares the host's, and --userns private adds nothing")
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
        from . import quota

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
    check("network.host", *_host_network(root))
    if registry:
        checks.append(course_registry_check())

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
    required = REQUIRED if root else tuple(r for r in REQUIRED if r != "root") + ("userns.rootless",)
    ok = all(c["ok"] for c in checks if c["id"] in required)
    return {"version": VERSION, "ok": ok, "checks": checks, "limits": limits, "cgroup": layout,
            "root": root, "kernel": kernel}


def course_registry_check() -> dict:
    """``registry.course`` as a doctor check (never raises)."""
    try:
        ok, detail = course_registry()
    except Exception as e:  # noqa: BLE001 - a diagnosis must never fail
        ok, detail = False, f"cannot ask the course registry: {e}"
    return {"id": "registry.course", "ok": ok, "detail": detail}


def course_registry(timeout: float = 1.5) -> tuple[bool, str]:
    """Whether the course's registry (``course-registry`` in registries.toml,
    localhost:5000 by default) answers ``GET /v2/`` -- any HTTP answer will
    do, 401 included (it wants a login, and ``login`` gives one)."""
    import urllib.error
    import urllib.request

    from .images import config
    from .images.registry import is_loopback

    try:
        settings = config.load()
    except config.ConfigError as e:
        return False, f"the registry settings cannot be read: {e}"
    host = settings.course_registry
    scheme = "http" if is_loopback(host) or settings.is_insecure(host) else "https"
    where = "course-registry in registries.toml" if host != config.COURSE_REGISTRY else "the default; set course-registry in " \
        "registries.toml to move it"
    try:
        urllib.request.urlopen(f"{scheme}://{host}/v2/", timeout=timeout).close()
    except urllib.error.HTTPError:
        pass                                # it answered (401: log in first)
    except (OSError, ValueError) as e:
        why = getattr(e, "reason", None) or e
        why = getattr(why, "strerror", None) or str(why)
        return False, f"no registry answers at {scheme}://{host} ({where}): {why}"
    return True, f"the course registry answers at {scheme}://{host} ({where})"


def apparmor_paragraph(lang: str | None = None) -> str:
    """What doctor says where AppArmor keeps unprivileged programs from making
    user namespaces (Ubuntu 24.04's default), in the locale's language: why,
    and the profile an administrator can install for this interpreter (the
    engine makes its user namespace before it runs from its sealed copy)."""
    import sys

    from .explain import MESSAGES, language

    return MESSAGES.text(language(lang), "doctor.apparmor").format(python=os.path.realpath(sys.executable))


def _rootless_checks(check) -> None:
    """What a user who is not root gets (engine.userns): user namespaces at
    all, and which id mapping."""
    from . import userns

    why = userns.restriction_reason()
    if why and "AppArmor" in why:
        why = apparmor_paragraph()
    check("userns.rootless", why is None, why or
          "user namespaces are allowed: containers run as root of a user namespace of yours")
    plan = userns.plan()
    check("userns.ids", plan.mode == "subid",
          f"uids 0-{plan.size - 1} inside map to yours and your subordinate range "
          f"({' '.join(f'{a}:{b}:{c}' for a, b, c in plan.uid_map)})" if plan.mode == "subid" else
          f"only your own uid is mapped (root inside is you): chown to other users and apt-get in a "
          f"container fail; {plan.why}")


def _host_network(root: bool) -> tuple[bool, str]:
    """Whether --network host is the host's own network namespace."""
    if not root:
        from .userns import pasta_missing

        if pasta_missing() is None:
            return False, ("without root --network host is the engine's own network namespace (the one pasta "
                           "plugs into the host's), as with rootless Docker: not the host's")
    return True, "--network host shares the host's network namespace"


def _network_support(root: bool) -> tuple[bool, str]:
    """Whether containers get the default bridge network (else a loopback only, with a warning)."""
    def installed(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, OSError, ValueError):
            return False

    if not root:
        from .userns import pasta_missing

        why = pasta_missing()
        if why is not None:
            return False, f"containers get a loopback device only (as --network none), and -p is refused: {why}"
    missing = [what for what, ok in (
        ("the nft command (install nftables)", shutil.which("nft") is not None),
        ("pyroute2 (pip install pyroute2)", installed("pyroute2")),
        ("dnspython (pip install dnspython)", installed("dns")),
    ) if not ok]
    if missing:
        return False, ("containers get a loopback device only (as --network none); networks need "
                       + ", ".join(missing))
    if not root:
        return True, ("containers get the default bridge network in the engine's own network namespace, which "
                      "pasta plugs into the host's: an address, names, published ports (-p, 1024 and up)")
    return True, "containers get the default bridge network: an address, names, published ports (-p)"
