"""What :func:`engine.observe.snapshot` returns: the :class:`Snapshot` and
the TypedDicts it is made of, schema :data:`VERSION`. Plain data, JSON
serialisable; the lab panel, ``top`` and ``inspect --namespaces`` read it.
"""

from __future__ import annotations

from typing import TypedDict

VERSION = 1


class Process(TypedDict):
    """One process of the container (the list is sorted by ``pid``)."""

    pid: int                    # in the container's PID namespace
    host_pid: int
    nspid: list[int]            # every level, host first: a namespace nested inside shows too
    ppid: int                   # inside; 0 for PID 1 and for processes started from outside (exec)
    ppid_host: int
    uid: int                    # inside: the host uid through the uid_map (65534 when unmapped)
    uid_host: int
    state: str                  # R, S, D, Z, T ...
    name: str
    cmd: list[str]              # argv; [name] for kernel threads and zombies
    start_ticks: int            # clock ticks after boot
    started: float              # epoch seconds
    threads: int
    rss_kb: int


class Namespace(TypedDict, total=False):
    inode: int
    host: int | None            # the reference's inode of the same kind
    shared_with_host: bool
    shared_with: list[str]      # other containers' names (only when ``others`` was given)


class Interface(TypedDict):
    index: int
    name: str
    kind: str | None            # veth, bridge, dummy ...; None for lo
    type: str                   # loopback, ether ...
    state: str                  # the operstate: up, down, unknown ...
    up: bool
    lower_up: bool
    flags: list[str]
    mtu: int
    mac: str | None
    link: int | None            # a veth's peer index
    link_netnsid: int | None
    master: int | None
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int


class Address(TypedDict):
    family: str                 # inet, inet6
    address: str
    prefixlen: int
    interface: str
    index: int
    scope: str


class Route(TypedDict):
    family: str
    dst: str                    # "default" or "10.0.0.0/24"
    gateway: str | None
    dev: str | None
    prefsrc: str | None
    metric: int | None
    table: int
    protocol: str
    scope: str
    type: str


class Network(TypedDict):
    inode: int                  # of the network namespace
    entered: bool               # False when it is the caller's own (--network host)
    interfaces: list[Interface]
    addresses: list[Address]
    routes: list[Route]         # of the main table


class Snapshot(TypedDict):
    """What :func:`snapshot` returns (schema :data:`VERSION`)."""

    version: int
    time: float                 # epoch seconds
    id: str
    name: str
    status: str
    pid: int                    # the host PID of the container's PID 1
    reference: str              # where the host's namespaces were read
    processes: list[Process]
    namespaces: dict[str, Namespace]    # by kind (engine.namespaces.KINDS)
    mounts: list[dict]          # the container's mountinfo, the overlay's layers picked out
    hostname: str | None
    network: Network | None     # None when it could not be read ...
    network_error: str | None   # ... and then why (exited meanwhile, no permission ...)
    resources: dict | None      # the cgroup's usage and limits (engine.cgroups.Cgroup.usage)
    settings: dict | None       # inspect's NetworkSettings: networks, veth ends, bridge, ports, peers
