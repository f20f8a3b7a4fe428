"""What this machine can do for containers, as the app shows it -- no Textual.

The app asks :func:`engine.doctor.diagnose` once, at start (a few reads of
/proc and /sys, about 2 ms, no container started), and keeps the answer in a
:class:`Machine`: the welcome screen reports it, and each lesson's lab gets it
as its ``doctor`` so a step that needs what is missing here (a memory limit,
root) explains itself instead of failing. Tests pin a machine with
:meth:`Machine.pinned`, so every host draws the same screens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.namespaces import KINDS as NAMESPACES

LIMITS = ("memory", "pids", "cpu", "swap")


@dataclass(frozen=True, eq=False)
class Machine:
    """One diagnosis (what ``container-lab doctor --format json`` prints), read for the app."""

    diagnosis: dict = field(default_factory=dict)

    def _check(self, cid: str) -> dict:
        for c in self.diagnosis.get("checks", []):
            if c.get("id") == cid:
                return c
        return {"id": cid, "ok": False, "detail": ""}

    def ok(self, cid: str) -> bool:
        """Whether doctor's check ``cid`` (``root``, ``cgroup.memory`` ...) passed."""
        return bool(self._check(cid).get("ok"))

    def detail(self, cid: str) -> str:
        """What doctor said about check ``cid``."""
        return self._check(cid).get("detail", "")

    @property
    def root(self) -> bool:
        return bool(self.diagnosis.get("root"))

    @property
    def can_run(self) -> bool:
        """Whether containers run here at all: as root, or rootless."""
        return bool(self.diagnosis.get("ok"))

    @property
    def blocker(self) -> str:
        """Why containers cannot run here (doctor's words of the first required check that failed)."""
        from engine.doctor import REQUIRED

        required = REQUIRED if self.root else tuple(r for r in REQUIRED if r != "root") + ("userns.rootless",)
        return next((c.get("detail", "") for c in self.diagnosis.get("checks", [])
                     if c.get("id") in required and not c.get("ok")), self.detail("root"))

    @property
    def cgroup(self) -> str:
        """The cgroup layout the engine drives: ``v1``, ``v2`` or ``none``."""
        return self.diagnosis.get("cgroup", "none")

    @property
    def limits(self) -> tuple[str, ...]:
        """The limits the engine applies here, in :data:`LIMITS` order."""
        have = self.diagnosis.get("limits", {})
        return tuple(name for name in LIMITS if have.get(name))

    @property
    def cgroup_ok(self) -> bool:
        """Whether containers get at least one resource limit here."""
        return self.cgroup != "none" and bool(self.limits)

    @property
    def cgroup_reason(self) -> str:
        """Why there are no limits (doctor's words), when there are none."""
        if self.cgroup_ok:
            return ""
        return next((self.detail(f"cgroup.{name}") for name in LIMITS if self.detail(f"cgroup.{name}")), "")

    @property
    def overlayfs(self) -> bool:
        return self.ok("overlayfs")

    def doctor(self) -> dict:
        """The diagnosis, as :class:`lessons.lab.Lab` asks for it (``doctor=machine.doctor``)."""
        return self.diagnosis

    @classmethod
    def pinned(cls, *, root: bool = True, cgroup: str = "v2", limits=LIMITS, overlayfs: bool = True,
               reason: str = "", rootless: bool = False) -> Machine:
        """A made-up machine, for tests and screenshots: every doctor check, as
        given (``rootless``: not root, and user namespaces allowed)."""
        checks = [{"id": "root", "ok": root, "detail": "running as root" if root else
                   "not root: containers run rootless, in a user namespace of yours (see userns.*)"},
                  {"id": "kernel", "ok": True, "detail": "Linux 6.1.0"},
                  {"id": "userns.rootless", "ok": root or rootless, "detail": "user namespaces are allowed"
                   if root or rootless else "user namespaces are off (user.max_user_namespaces=0)"},
                  {"id": "overlayfs", "ok": overlayfs, "detail": "overlayfs is available" if overlayfs else
                   "overlayfs is not in /proc/filesystems (try: modprobe overlay)"}]
        checks += [{"id": f"ns.{kind}", "ok": True, "detail": f"{kind} namespaces are available"}
                   for kind in NAMESPACES]
        checks.append({"id": "userns.private", "ok": root, "detail": "--userns private works"})
        for name in LIMITS:
            have = cgroup != "none" and name in limits
            checks.append({"id": f"cgroup.{name}", "ok": have, "detail":
                           f"{cgroup}: {name} limits are applied" if have else
                           f"{name} limits cannot be applied: {reason or 'no controller'}"})
        ok = (root or rootless) and overlayfs
        return cls({"version": 1, "ok": ok, "checks": checks, "cgroup": cgroup, "root": root,
                    "kernel": "6.1.0", "limits": {name: cgroup != "none" and name in limits for name in LIMITS}})


def check_machine(diagnose=None) -> Machine:
    """This machine, as ``container-lab doctor`` sees it (never raises)."""
    if diagnose is None:
        from engine.doctor import diagnose
    try:
        return Machine(diagnose())
    except Exception as e:  # noqa: BLE001 - a check must never stop the app from opening
        return Machine({"checks": [{"id": "root", "ok": False, "detail": f"container-lab doctor failed: {e}"}]})
