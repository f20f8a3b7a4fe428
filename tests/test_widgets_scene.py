"""Record the lab panel's fixture scene from real containers.

    sudo .venv/bin/python tests/test_widgets_scene.py tests/fixtures/snapshots/lesson.json

Starts, in a private engine root, what a namespaces-and-cgroups lesson
would: ``web`` (a lesson container with limits on the user network
``lesson-net``, port 80 published on 8080, a small process tree,
changes in its writable layer, a process limit hit and an OOM kill), ``db``
sharing web's network and IPC namespaces, ``mine`` (the learner's own, on
``lesson-net`` too) and
``hello`` (exited); records them with :func:`tui.widgets.sources.record`
(web's history starts with a full snapshot from before db joined it and
before an exec, so the Namespaces and Processes tabs show what changed; the
rest of each history is usage only, for the sparklines), and removes everything. Paths of the private root are rewritten
to ``/var/lib/container-lab`` so the scene reads like a real install.

Not a test module (no ``test_`` prefix): the snapshot tests only read the
JSON it writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LESSON = ["-l", "course=intro", "-l", "course.lesson=09", "-l", "course.step=share-net",
          "-l", "course.origin=setup"]


def main(out: str) -> None:
    root = tempfile.mkdtemp(prefix="clw-", dir="/tmp")
    os.environ["CONTAINER_LAB_ROOT"] = root
    sys.path.insert(0, str(REPO))
    from engine.client import Client
    from tui.widgets.sources import record

    def cl(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=REPO, text=True,
                              capture_output=True, timeout=120)
        print("$ container-lab", " ".join(args), "->", proc.returncode, proc.stderr.strip()[:200])
        return proc.stdout

    client = Client()
    try:
        cl("network", "create", "--subnet", "10.88.0.0/24", "lesson-net")
        cl("run", "-d", "--name", "web", *LESSON, "--network", "lesson-net", "-p", "8080:80",
           "-m", "64m", "--pids-limit", "20", "--cpus", "0.5", "lab",
           "sh", "-c", "sleep 1000 & sleep 2000 & (while true; do sleep 1000; done) & wait")
        cl("exec", "web", "sh", "-c", "echo hello > /tmp/hello; "
           "echo 'learner:x:1000:1000::/home/learner:/bin/sh' >> /etc/passwd; rm /etc/os-release")
        cl("exec", "web", "sh", "-c", "for i in $(seq 30); do sleep 1 & done; wait")
        cl("exec", "web", "sh", "-c", "head -c 200000000 /dev/zero | tail > /dev/null")
        time.sleep(1.5)                      # the supervisor looks at the counters now and then
        early = client.snapshot("web")
        cl("run", "-d", "--name", "db", *LESSON, "--network", "container:web", "--ipc", "container:web",
           "lab", "sleep", "3000")
        cl("run", "-d", "--name", "mine", "-l", "course=intro", "-l", "course.lesson=09",
           "-l", "course.origin=learner", "--network", "lesson-net", "lab", "sleep", "4000")
        cl("run", "--name", "hello", "lab", "echo", "Hello World")
        cl("exec", "-d", "web", "sleep", "300")
        cl("exec", "-d", "web", "sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
        time.sleep(0.3)
        scene = record(client, history=8, interval=0.5,
                       replace={f"{root}/lib": "/var/lib/container-lab", root: "/var/lib/container-lab"})
        web = next(c["id"] for c in scene["containers"] if c["name"] == "web")
        text = json.dumps(early).replace(f"{root}/lib", "/var/lib/container-lab").replace(root, "/var/lib/container-lab")
        for cid, history in scene["snapshots"].items():   # earlier ones: usage only (the sparklines)
            scene["snapshots"][cid] = [{k: h[k] for k in ("id", "name", "time", "resources") if k in h}
                                       for h in history[:-1]] + history[-1:]
        scene["snapshots"][web].insert(0, json.loads(text))   # in full: what changed since
        Path(out).write_text(json.dumps(scene, indent=1, ensure_ascii=False) + "\n")
        print("wrote", out, {c["name"]: c["status"] for c in scene["containers"]},
              [e["kind"] for e in scene["events"]])
    finally:
        for name in ("web", "db", "mine", "hello"):
            cl("rm", "-f", name)
        cl("network", "rm", "lesson-net")
        client.shutdown()
        from engine.supervisor.networks import remove_all_networks
        remove_all_networks(Path(root) / "lib")
        subprocess.run(["rm", "-rf", root])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(REPO / "tests/fixtures/snapshots/lesson.json"))
