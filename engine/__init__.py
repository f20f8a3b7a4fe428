"""container-lab's container engine: real namespaces, overlayfs, cgroups and networks, in Python.

It imports nothing else of the project (the course and the app build on it).
Where each concern lives:

- ``cli/``         the docker-like command line (one module per group of verbs)
- ``client/``      the API every caller uses: requests to the supervisor, stdio relays
- ``supervisor/``  the one process per user that forks, watches and tidies
                   containers (start.py: where a container starts)
- ``runtime/``     the container's side of a start: each stage from fork to execve
- ``network/``     bridges, veth pairs, addresses, nftables, names, port proxies
- ``images/``      the image store, registries, archives, the built-in ``lab`` image
- ``cgroups/``     limits and usage on cgroup v1 and v2
- ``observe/``     what the lab panel shows: processes, namespaces, mounts, network
- ``spec.py``      a container's configuration and its checks; ``container.py``
                   its record; ``records.py`` atomic JSON files; ``events.py`` the event log
- ``policy.py``    what each client may ask (owner or classroom seat); ``paths.py``
                   where state and data live, and whom to trust there
- ``userns.py``    rootless: the user namespace the engine of a user who is not
                   root lives in (newuidmap and a subordinate range, or one id)
- ``seccomp.py``, ``sealed.py``, ``syscalls.py``, ``terminal.py``, ``quota.py``:
                   the kernel interfaces they are named after
- ``explain.py``, ``transcript.py``, ``catalog.py``, ``lang.py``: what a start
                   did, in words (English / 中文)
- ``doctor.py``    what this machine can do, and why not; ``netinfo.py`` a
                   network namespace read over netlink
"""
