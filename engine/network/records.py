"""What a network is, on disk: two small records and the names derived from them.

Docker's libnetwork bridge driver and podman's netavark keep networking as
*data*: a **network** is a small record (name, subnet, gateway, the bridge
that carries it, a few options) and each container's **attachment** to it is
another (its address, MAC, aliases, the host end of its veth pair, its
published ports). Setting up and tearing down are then one idempotent
function each, driven from those records alone -- so after a crash the same
teardown can be replayed from what is on disk, and nothing needs to be
remembered in memory.

Layout under the data directory (``Store.root``)::

    networks/<name>.json                    one Network record each
    attachments/<container-id>.<netid8>.json  one Attachment record each
    lock                                    flock(2)-ed while records change

Every name the kernel sees is derived from the records, so a sweep can tell
ours from anyone else's:

- the bridge: ``cl-`` + the first 8 hex digits of the network id
  (``cl-3f2a9b10``: 11 characters, within IFNAMSIZ's 15);
- the host end of a veth pair: ``vcl`` + 8 hex digits of a hash of
  (container id, network id) -- Docker names it ``veth`` + 7 random hex
  digits; ours is deterministic, so teardown finds it again from the record;
- each of our links carries an ``ifalias`` (``ip link set DEV alias ...``)
  naming the data directory it belongs to, so two data directories on one
  host (a test's and a learner's) never sweep each other's links.

The container end of the veth is ``eth0`` inside the container's network
namespace, with a MAC derived from its IPv4 address as Docker does:
``02:42`` (a locally administered, unicast prefix) followed by the four
bytes of the address -- 172.17.0.2 becomes 02:42:ac:11:00:02. The same
address always gives the same MAC, so no two containers on a subnet share one.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from ..errors import EngineError
from ..records import write_json_atomic

IFNAMSIZ = 16                       # including the trailing NUL: names of at most 15 bytes
BRIDGE_PREFIX = "cl-"
VETH_PREFIX = "vcl"
ALIAS_PREFIX = "container-lab"      # the ifalias of every link we create starts so
DEFAULT_TABLE = "container_lab"     # nftables: table inet container_lab
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")


class NetworkError(EngineError):
    """A network could not be created, attached, published or removed; one line says why."""


# ---- the on-disk shapes ---------------------------------------------------------------------

class NetworkRecord(TypedDict):
    name: str
    id: str                 # 64 hex digits, as docker's network ids
    driver: str             # "bridge": the only driver
    subnet: str             # "172.18.0.0/16"
    gateway: str            # "172.18.0.1": the bridge's own address
    bridge: str             # "cl-<id8>"
    internal: bool          # no route out, no NAT, no published ports
    dns: bool               # containers resolve each other's names (user networks)
    options: dict[str, str]
    created: float


class PortRecord(TypedDict):
    host_ip: str            # "" = every address of the host
    host_port: int
    container_port: int
    proto: str              # "tcp" or "udp"


class AttachmentRecord(TypedDict):
    container_id: str
    name: str               # the container's name: what DNS answers for
    network: str            # network name
    network_id: str
    address: str            # "172.18.0.2"
    prefixlen: int
    gateway: str
    mac: str
    aliases: list[str]
    veth: str               # host end, "vcl<8 hex>"; "eth0" inside
    ports: list[PortRecord]
    pid: int                # the container's PID 1 (0 until known)
    start_ticks: int        # field 22 of /proc/PID/stat: tells a reused PID apart
    created: float
    ifname: str             # the container's end: "eth0", "eth1" for a second network
    default_route: bool     # its way out is this network's gateway (the first network's)


# ---- names ----------------------------------------------------------------------------------

def bridge_name(network_id: str) -> str:
    return BRIDGE_PREFIX + network_id[:8]


def veth_name(container_id: str, network_id: str) -> str:
    digest = hashlib.sha256(f"{container_id}\0{network_id}".encode()).hexdigest()
    return VETH_PREFIX + digest[:8]


def mac_for(address: str) -> str:
    """Docker's MAC for an IPv4 address: 02:42 and the address's four bytes."""
    packed = ipaddress.IPv4Address(address).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)


def new_network_id() -> str:
    return secrets.token_hex(32)


# ---- the records as objects ---------------------------------------------------------------

@dataclass
class Network:
    name: str
    id: str
    subnet: str
    gateway: str
    bridge: str
    internal: bool = False
    dns: bool = True
    options: dict[str, str] = field(default_factory=dict)
    driver: str = "bridge"
    created: float = field(default_factory=time.time)

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.subnet).prefixlen

    def record(self) -> NetworkRecord:
        return NetworkRecord(name=self.name, id=self.id, driver=self.driver, subnet=self.subnet,
                             gateway=self.gateway, bridge=self.bridge, internal=self.internal,
                             dns=self.dns, options=dict(self.options), created=self.created)

    @classmethod
    def from_record(cls, rec: NetworkRecord) -> Network:
        return cls(name=rec["name"], id=rec["id"], subnet=rec["subnet"], gateway=rec["gateway"],
                   bridge=rec["bridge"], internal=bool(rec.get("internal")), dns=bool(rec.get("dns", True)),
                   options=dict(rec.get("options") or {}), driver=rec.get("driver", "bridge"),
                   created=rec.get("created", 0.0))


@dataclass
class Attachment:
    container_id: str
    name: str
    network: str
    network_id: str
    address: str
    prefixlen: int
    gateway: str
    mac: str
    veth: str
    aliases: list[str] = field(default_factory=list)
    ports: list[PortRecord] = field(default_factory=list)
    pid: int = 0
    start_ticks: int = 0
    created: float = field(default_factory=time.time)
    ifname: str = "eth0"            # the container's end: eth0, then eth1 ... (network connect)
    default_route: bool = True      # False on a network connected to later: the first one keeps the way out

    @property
    def key(self) -> str:
        """The record's file name, without ``.json``."""
        return f"{self.container_id}.{self.network_id[:8]}"

    def record(self) -> AttachmentRecord:
        return AttachmentRecord(container_id=self.container_id, name=self.name, network=self.network,
                                network_id=self.network_id, address=self.address, prefixlen=self.prefixlen,
                                gateway=self.gateway, mac=self.mac, aliases=list(self.aliases),
                                veth=self.veth, ports=[PortRecord(**p) for p in self.ports], pid=self.pid,
                                start_ticks=self.start_ticks, created=self.created, ifname=self.ifname,
                                default_route=self.default_route)

    @classmethod
    def from_record(cls, rec: AttachmentRecord) -> Attachment:
        return cls(container_id=rec["container_id"], name=rec["name"], network=rec["network"],
                   network_id=rec["network_id"], address=rec["address"], prefixlen=int(rec["prefixlen"]),
                   gateway=rec["gateway"], mac=rec["mac"], veth=rec["veth"],
                   aliases=list(rec.get("aliases") or []), ports=[PortRecord(**p) for p in rec.get("ports") or []],
                   pid=int(rec.get("pid") or 0), start_ticks=int(rec.get("start_ticks") or 0),
                   created=rec.get("created", 0.0), ifname=rec.get("ifname") or "eth0",
                   default_route=bool(rec.get("default_route", True)))


# ---- the store ------------------------------------------------------------------------------

class Store:
    """The records of one data directory, and the lock that serialises changes.

    ``table`` is the nftables table (family ``inet``) this store's rules live
    in; a test gives its own so it never touches a learner's. ``pools`` are
    the subnets new networks are carved from (see :mod:`.ipam`)."""

    def __init__(self, root: Path | str, *, table: str = DEFAULT_TABLE, pools: tuple[str, ...] | None = None):
        from .ipam import DEFAULT_POOLS

        self.root = Path(root)
        self.table = table
        self.pools = tuple(pools) if pools else DEFAULT_POOLS
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", table):
            raise NetworkError(f"invalid nftables table name {table!r}: lower-case letters, digits and _")
        self.networks_dir = self.root / "networks"
        self.attachments_dir = self.root / "attachments"
        # Marks our links: "container-lab <8 hex of the data dir>".
        self._depth = 0
        self.owner = f"{ALIAS_PREFIX} {hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:8]}"

    def _dirs(self) -> None:
        for d in (self.networks_dir, self.attachments_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive flock(2) on ``ROOT/lock``: every lease, release and
        network change happens under it, so two processes (two supervisors, a
        supervisor and ``gc``) never hand out one address twice. The kernel
        drops the lock when its holder dies, however it dies."""
        if self._depth:                 # already held by this process: re-entrant
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._dirs()
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
        finally:
            os.close(fd)

    # networks
    def save_network(self, net: Network) -> None:
        self._dirs()
        write_json_atomic(self.networks_dir / f"{net.name}.json", dict(net.record()))

    def network(self, name: str) -> Network:
        """The network named ``name`` (or whose id starts with it)."""
        path = self.networks_dir / f"{name}.json"
        if NAME_RE.match(name) and path.exists():
            rec = _load(path)
            if rec is not None:
                return Network.from_record(rec)
        found = [n for n in self.networks() if len(name) >= 4 and n.id.startswith(name)]
        if len(found) == 1:
            return found[0]
        raise NetworkError(f"network {name!r} not found")

    def networks(self) -> list[Network]:
        out = []
        for path in sorted(self.networks_dir.glob("[!.]*.json")):
            rec = _load(path)
            if rec is not None:
                out.append(Network.from_record(rec))
        return out

    def delete_network_record(self, net: Network) -> None:
        (self.networks_dir / f"{net.name}.json").unlink(missing_ok=True)

    # attachments
    def save_attachment(self, att: Attachment) -> None:
        self._dirs()
        # Not fsync-ed (it would be most of a start's network stage): a lease only
        # matters while its container runs, and no container outlives a power cut.
        # A record torn by one reads as unreadable, which the sweep removes.
        write_json_atomic(self.attachments_dir / f"{att.key}.json", dict(att.record()), durable=False)

    def attachments(self, *, network_id: str | None = None, container_id: str | None = None) -> list[Attachment]:
        out = []
        # One container's records are found by name (<container-id>.<net8>.json), not by reading all.
        pattern = f"{container_id}.*.json" if container_id and re.fullmatch(r"[0-9a-f]{1,64}", container_id) \
            else "[!.]*.json"
        for path in sorted(self.attachments_dir.glob(pattern)):
            rec = _load(path)
            if rec is None:
                continue
            att = Attachment.from_record(rec)
            if network_id is not None and att.network_id != network_id:
                continue
            if container_id is not None and att.container_id != container_id:
                continue
            out.append(att)
        return out

    def unreadable_attachments(self) -> list[Path]:
        """Attachment records that cannot be read (torn by a power cut, or edited by hand)."""
        return [p for p in sorted(self.attachments_dir.glob("[!.]*.json")) if _load(p) is None] \
            if self.attachments_dir.exists() else []

    def delete_attachment_record(self, att: Attachment) -> None:
        (self.attachments_dir / f"{att.key}.json").unlink(missing_ok=True)


def _load(path: Path) -> dict | None:
    """A record, or None when it is unreadable (a torn write cannot happen --
    records are replaced atomically -- but a hand-edited file can)."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None
