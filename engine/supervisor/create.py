"""Creating a container (``run`` and ``create``): its name, its image
resolved (and cached), its command and environment from the image's config,
its directory with the writable layer and /etc files, its record. Nothing
runs yet: :mod:`.start` does that.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .. import paths, policy, runtime
from ..container import Container
from ..errors import ImageNotFound, InvalidArgument, NameConflict
from ..spec import ContainerConfig, check_argv, check_process_options
from .settings import MAX_ENV, MAX_LABELS

_ADJECTIVES = ("brave", "calm", "clever", "eager", "gentle", "happy", "keen", "lucid", "merry",
               "nimble", "quiet", "quirky", "sharp", "sleepy", "swift", "tender", "vivid", "wise")
_NAMES = ("babbage", "curie", "dijkstra", "hopper", "kernighan", "knuth", "lamport", "liskov",
          "lovelace", "noether", "ritchie", "shannon", "thompson", "torvalds", "turing", "wing")


class Create:
    """Making a container's record and directory."""

    def op_create(self, conn, msg, fds):
        """Create a container without starting it (docker create); ``start`` runs it."""
        config = _config_from(msg.get("config"))
        conn.policy.admit(config)
        self.prepare_seat(conn, config)
        for kind, mode in (("pid", config.pid_mode), ("ipc", config.ipc_mode), ("net", config.network)):
            self.sharing(mode, kind)
        self.check_network_config(config)
        c = self.create(config)
        return {"id": c.id, "name": c.name, "warnings": []}, []

    def unique_name(self, seat: str | None = None) -> str:
        taken = {c.name for c in self.containers.values() if policy.OWNER.scope(c.config.labels) == seat}
        for _ in range(100):
            name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NAMES)}"
            if name not in taken:
                return name
        return f"lab_{secrets.token_hex(4)}"

    def create(self, config: ContainerConfig) -> Container:
        seat = policy.OWNER.scope(config.labels)     # names are per seat (the owner's: None)
        name = config.name or self.unique_name(seat)
        for other in self.containers.values():
            if other.name == name and policy.OWNER.scope(other.config.labels) == seat:
                raise NameConflict(
                    f'Conflict. The container name "/{name}" is already in use by container '
                    f'"{other.id}". You have to remove (or rename) that container to be able to reuse that name.')
        image = self.resolve_image(config.image)
        img = image.config or {}
        for key in ("Entrypoint", "Cmd"):
            if img.get(key) is not None:
                check_argv(img[key], f"the image's {key} ")
        check_process_options(img.get("Env") or [], img.get("WorkingDir") or None, img.get("User") or None,
                              origin="the image's ")
        entrypoint = config.entrypoint if config.entrypoint is not None else (img.get("Entrypoint") or [])
        cmd = config.cmd or ([] if config.entrypoint is not None else (img.get("Cmd") or []))
        argv = list(entrypoint) + list(cmd)
        if not argv:
            raise InvalidArgument("no command specified")
        for vol in config.volumes:
            if not os.path.exists(vol.source):
                raise InvalidArgument(f"invalid volume: host path {vol.source} does not exist")
        size = (config.storage_opt or {}).get("size")
        if size:
            from .. import quota
            can, why = quota.support(str(self.containers_dir))
            if not can:
                raise InvalidArgument(f"{quota.UNSUPPORTED}: {why}")
        cid = secrets.token_hex(32)
        cdir = self.containers_dir / cid
        paths.ensure_private_dir(cdir)
        for sub in ("upper", "work", "rootfs"):
            (cdir / sub).mkdir(mode=0o755)
        if size:
            try:       # the writable layer's limit: an XFS project quota on upper and work
                quota.limit([str(cdir / "upper"), str(cdir / "work")], size)
            except OSError as e:
                self.remove_debris(cdir)
                raise InvalidArgument(f"cannot limit the writable layer to {size} bytes: {e.strerror or e}") from None
        c = Container(cid, name, config, cdir)
        hostname = config.hostname or cid[:12]
        env = {}
        for item in list(img.get("Env") or []) + [f"HOSTNAME={hostname}"] + (
                ["TERM=xterm"] if config.tty else []) + config.env:
            key, _, value = item.partition("=")
            env[key] = value
        env.setdefault("PATH", runtime.DEFAULT_PATH)
        layers, userns = image.layers, None
        if config.userns_mode == "private" and not self.rootless:   # rootless: see Start._start_in
            base, size = self.userns_range(config)
            layers = self.store.shifted_layers(image, base, size)
            os.chown(cdir / "upper", base, base)      # "/" inside belongs to root inside
            userns = {"base": base, "size": size}
        c.image = {"requested": config.image, "ref": image.ref, "id": image.id, "digest": image.digest,
                   "layers": [str(p) for p in layers], "exposed": sorted(img.get("ExposedPorts") or {})}
        c.process = {"argv": argv, "env": [f"{k}={v}" for k, v in env.items()],
                     "cwd": config.workdir or img.get("WorkingDir") or "/",
                     "user": config.user or img.get("User") or "", "hostname": hostname,
                     "lowerdir": image.lowerdir(layers), "userns": userns}
        (cdir / "hostname").write_text(hostname + "\n")
        (cdir / "hosts").write_text(
            f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n")
        (cdir / "resolv.conf").write_text(_resolv_conf())
        c.save()
        self.containers[cid] = c
        self.emit("created", c)
        return c

    def resolve_image(self, ref: str):
        """The store's answer, remembered until repositories.json changes (a
        resolve reads and checks several files: too slow for every run)."""
        try:
            stamp = os.stat(self.store.repositories).st_mtime_ns
        except FileNotFoundError:
            stamp = 0
        cached = self.image_cache.get(ref)
        if cached and cached[0] == stamp and all(p.is_dir() for p in cached[1].layers):
            return cached[1]
        try:
            image = self.store.resolve(ref)
        except ImageNotFound as e:
            try:
                image = self.store.find(ref)  # an image id (an untagged image has only that)
            except ImageNotFound:
                raise e from None
        try:
            stamp = os.stat(self.store.repositories).st_mtime_ns   # lab may just have been built
        except FileNotFoundError:
            stamp = 0
        self.image_cache[ref] = (stamp, image)
        return image


def _config_from(data) -> ContainerConfig:
    """A request's container config: its fields' types checked (by
    ContainerConfig, one line naming the field), then its sizes bounded."""
    if not isinstance(data, dict):
        raise InvalidArgument("a container config must be an object")
    config = ContainerConfig.from_dict(data).validate()
    size = sum(len(k.encode()) + len(v.encode()) for k, v in (config.labels or {}).items())
    if size > MAX_LABELS:
        raise InvalidArgument(f"labels too large: {size / 1024:.0f} KiB in all (at most {MAX_LABELS >> 10} KiB)")
    size = sum(len(item.encode()) for item in config.env or [])
    if size > MAX_ENV:
        raise InvalidArgument(f"environment too large: {size / 1024:.0f} KiB in all (at most {MAX_ENV >> 10} KiB)")
    return config


def _resolv_conf() -> str:
    """The host's resolv.conf without loopback servers (useless in a new netns)."""
    try:
        lines = Path("/etc/resolv.conf").read_text().splitlines()
    except OSError:
        lines = []
    kept = [ln for ln in lines if not (ln.startswith("nameserver") and
                                       (" 127." in ln or " ::1" in ln))]
    return "\n".join(kept) + "\n"

