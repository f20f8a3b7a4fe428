#!/usr/bin/env python3
"""Push benchmark: ``container-lab push`` against ``skopeo copy`` to the same
kind of registry, side by side in ONE run.

    sudo .venv/bin/python bench/push.py [--runs N] [--mib N] [--markdown FILE]

Two images, both in a private engine root: the built-in ``lab`` image (one
~26 MB uncompressed layer) and ``bench/big`` -- one layer holding ``--mib``
MiB of random bytes (``import`` of a tar). Each is pushed, every
run, into a registry that has never seen it: a fresh ``docker-registry`` on
127.0.0.1 (storage in a temp dir), started before the clock starts and
stopped after, so no blob is "already there" and nothing is mounted.

The rows, each run once per round, their order turned each round:

- ``container-lab push`` -- the CLI, a process of its own (its start-up
  counted), blobs as stored: uncompressed layers go uncompressed;
- ``skopeo copy --preserve-digests`` -- from an OCI layout of the same image
  (``save``'s archive, unpacked beforehand): the same bytes on the wire, the
  same manifest digest;
- ``skopeo copy`` -- skopeo's default, which gzip-compresses an uncompressed
  layer on the way to a registry (other bytes, another digest; fewer of them).

The table gives each row's median and p95 over the rounds (seconds, wall
clock) and the ratio to ``container-lab push``'s median. Everything made is
removed at the end (Ctrl-C too): the registries, the layout, the engine root.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, begin, clean_engine, percentile, run_meta, use_engine_root  # noqa: E402

LOCK_FILE = Path("/tmp/clab-bench.lock")           # shared with the other benchmarks: never two at once
ROOT = Path(tempfile.mkdtemp(prefix="clbpush-", dir="/tmp"))
CGROUP_PARENT = f"container-lab-bench-push-{os.getpid()}"
use_engine_root(ROOT, CGROUP_PARENT)
sys.path.insert(0, str(REPO / "tests"))
from registry_support import RegistryServer  # noqa: E402

ROWS = ("container-lab push", "skopeo copy --preserve-digests", "skopeo copy")


def cl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, cwd=REPO,
                          check=True)


def big_image(work: Path, mib: int) -> None:
    """``bench/big``: one layer holding --mib MiB of random bytes (``import`` of a tar)."""
    tar_path = work / "big.tar"
    with tarfile.open(tar_path, "w") as tar:
        noise = work / "noise.bin"
        with open(noise, "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        tar.add(noise, arcname="noise.bin")
        noise.unlink()
    cl("import", str(tar_path), "bench/big:latest")
    tar_path.unlink()


def oci_layout(work: Path, image: str) -> Path:
    """An OCI image layout of ``image`` (``save``'s archive, unpacked) for skopeo to read."""
    archive = work / "saved.tar"
    cl("save", "-o", str(archive), image)
    layout = work / ("layout-" + image.replace("/", "_").replace(":", "_"))
    layout.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="data")
    archive.unlink()
    return layout


def one(row: str, image: str, layout: Path) -> float:
    """One push of ``image`` by ``row`` into a fresh registry; seconds."""
    registry = RegistryServer()
    try:
        target = f"{registry.host}/bench/{image.split('/')[-1].split(':')[0]}:v1"
        if row == "container-lab push":
            cl("tag", image, target)
            argv = [sys.executable, "-m", "engine.cli", "push", "-q", target]
        else:
            argv = ["skopeo", "copy", "-q", "--dest-tls-verify=false",
                    *(["--preserve-digests"] if "preserve" in row else []),
                    f"oci:{layout}:latest", f"docker://{target}"]
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=REPO)
        took = time.perf_counter() - started
        if row == "container-lab push":
            cl("rmi", target)
        return took
    finally:
        registry.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="rounds (default 7)")
    ap.add_argument("--mib", type=int, default=128, help="MiB of the big image's own layer (default 128)")
    ap.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    ap.add_argument("--json", metavar="FILE", help="also write every sample to FILE")
    args = ap.parse_args()
    lock = begin(LOCK_FILE)
    if lock is None:
        return 1
    work = Path(tempfile.mkdtemp(prefix="clbpush-work-", dir="/tmp"))
    samples: dict[str, dict[str, list[float]]] = {}
    try:
        cl("images")                                      # builds lab
        big_image(work, args.mib)
        images = {"lab": oci_layout(work, "lab:latest"), "bench/big": oci_layout(work, "bench/big:latest")}
        for name, layout in images.items():
            samples[name] = {row: [] for row in ROWS}
            for r in range(args.runs):
                order = ROWS[r % len(ROWS):] + ROWS[:r % len(ROWS)]
                for row in order:
                    samples[name][row].append(one(row, name, layout))
                print(f"{name}: round {r + 1}/{args.runs}: " +
                      ", ".join(f"{row} {samples[name][row][-1]:.2f} s" for row in ROWS), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        clean_engine(ROOT, CGROUP_PARENT)
        lock.close()
    meta = run_meta(runs=args.runs, mib=args.mib)
    lines = [f"Push, {meta['date']}, {meta['machine']}, commit {meta['git']}, {args.runs} rounds; "
             f"`{meta['command']}`", "",
             "| image | tool | median s | p95 s | vs push |", "|---|---|---:|---:|---:|"]
    for name, rows in samples.items():
        base = statistics.median(rows[ROWS[0]])
        for row in ROWS:
            med = statistics.median(rows[row])
            lines.append(f"| {name} | {row} | {med:.2f} | {percentile(rows[row], 0.95):.2f} | {med / base:.2f}x |")
    table = "\n".join(lines)
    print("\n" + table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "samples": samples}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
