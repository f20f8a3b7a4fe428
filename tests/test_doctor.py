"""container-lab doctor: what this machine can do for containers, as the engine sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from engine import userns

from conftest import REPO, cl, needs_root


def test_doctor_agrees_with_the_cgroup_driver_and_the_kernel():
    from engine.cgroups import detect

    report = json.loads(cl("doctor", "--format", "json").stdout)
    assert report["version"] == 1 and report["cgroup"] == detect().name
    why = detect().why_not()
    assert report["limits"] == {k: k not in why for k in ("memory", "pids", "cpu", "swap")}
    by_id = {c["id"]: c for c in report["checks"]}
    for kind in ("pid", "mnt", "uts", "ipc", "net", "cgroup", "user", "time"):
        assert by_id[f"ns.{kind}"]["ok"] == os.path.exists(f"/proc/self/ns/{kind}")
    assert by_id["root"]["ok"] == (os.geteuid() == 0)
    assert all(c["detail"] for c in report["checks"])


@needs_root
def test_doctor_as_an_unprivileged_user_says_how_containers_run_rootless():
    """Run as nobody (uid 65534, no subordinate range): containers run rootless
    where user namespaces are allowed, with only nobody's own uid mapped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTAINER_LAB")}
    # Everything is imported first: the interpreter may live where nobody cannot read (/root).
    proc = subprocess.run([sys.executable, "-c", "import os, json; from engine.doctor import diagnose; "
                           "import engine.cgroups; os.setgid(65534); os.setuid(65534); "
                           "print(json.dumps(diagnose()))"],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=30)
    report = json.loads(proc.stdout)
    by_id = {c["id"]: c for c in report["checks"]}
    allowed = userns.restriction_reason() is None
    assert report["root"] is False and report["ok"] is allowed
    assert not by_id["root"]["ok"] and "rootless" in by_id["root"]["detail"]
    assert by_id["userns.rootless"]["ok"] is allowed
    ids = by_id["userns.ids"]
    assert not ids["ok"] and "only your own uid is mapped" in ids["detail"]
    assert "/etc/subuid" in ids["detail"] or "newuidmap" in ids["detail"]
    text = cl("doctor")
    assert text.returncode == 0 and text.stdout.rstrip().endswith("containers can run here")
