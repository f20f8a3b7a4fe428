"""The container's system-call filter: what Docker's default seccomp profile
refuses, as a classic BPF program the kernel runs on every system call.

Docker's profile is an allowlist of about 350 calls (documented on Docker's
"Seccomp security profiles" page); everything it leaves out is refused with
EPERM. Most of what it leaves out already fails in a container for want of a
capability (mount needs CAP_SYS_ADMIN, reboot CAP_SYS_BOOT ...); the filter is
the second wall, for when a kernel bug makes the first one thin. This module
refuses that same significant set by name -- a denylist, so a program that
uses a call new to the kernel still runs, as it would under Docker's profile
of the same vintage -- with these rules:

* every call in :data:`REFUSED` returns EPERM;
* ``clone`` with a namespace flag returns EPERM (threads and plain forks pass);
  ``clone3`` returns ENOSYS, so the C library falls back to ``clone``, whose
  flags a filter can read (clone3 passes them in memory, out of its reach);
* ``socket`` of the families Docker's profile refuses (:data:`REFUSED_FAMILIES`:
  AF_VSOCK, a way to the host's hypervisor that no network namespace
  covers -- ``--network none`` would not hold -- and AF_ALG, the kernel's
  crypto API, a frequent home of kernel bugs) returns EPERM; every other
  family passes;
* a call of another ABI (32-bit ``int 0x80`` or x32 on x86_64) returns ENOSYS:
  its numbers differ, so a denylist by number must not let it through.

The program is built for the machine's architecture (x86_64 and aarch64; the
numbers are the kernel's ``unistd`` tables); elsewhere :func:`program` says it
has none and the engine says so, loudly, instead of pretending.
The layout of ``struct seccomp_data`` (``linux/seccomp.h``): ``nr`` at offset
0, ``arch`` at 4, the arguments from 16, each 64 bits, little-endian here.
"""

from __future__ import annotations

import errno
import struct

# What the filter refuses, grouped by why (the groups are shown in transcripts).
REFUSED: dict[str, tuple[str, ...]] = {
    "namespaces": ("unshare", "setns"),
    "mounts": ("mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "open_tree",
               "move_mount", "mount_setattr"),
    "kernel modules": ("init_module", "finit_module", "delete_module", "create_module", "query_module",
                       "get_kernel_syms"),
    "replacing the kernel": ("kexec_load", "kexec_file_load", "reboot"),
    "the clock": ("clock_settime", "clock_adjtime", "settimeofday"),
    "kernel keyrings": ("keyctl", "add_key", "request_key"),
    "tracing and BPF": ("bpf", "perf_event_open", "lookup_dcookie"),
    "host files by handle": ("open_by_handle_at", "name_to_handle_at"),
    "swap, quotas and accounting": ("swapon", "swapoff", "quotactl", "quotactl_fd", "acct", "nfsservctl"),
    "hardware ports": ("iopl", "ioperm"),
    "obsolete calls": ("uselib", "ustat", "sysfs", "_sysctl", "vhangup"),
    "io_uring": ("io_uring_setup", "io_uring_enter", "io_uring_register"),
    "memory tricks": ("userfaultfd",),
}

# socket(2) address families refused, by name (linux/socket.h numbers).
REFUSED_FAMILIES: dict[str, int] = {"AF_VSOCK": 40, "AF_ALG": 38}

# System call numbers per architecture (a name missing there does not exist there).
NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {
        "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "open_tree": 428, "move_mount": 429,
        "mount_setattr": 442, "init_module": 175, "finit_module": 313, "delete_module": 176,
        "create_module": 174, "query_module": 178, "get_kernel_syms": 177, "kexec_load": 246,
        "kexec_file_load": 320, "reboot": 169, "clock_settime": 227, "clock_adjtime": 305,
        "settimeofday": 164, "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321,
        "perf_event_open": 298, "lookup_dcookie": 212, "open_by_handle_at": 304, "name_to_handle_at": 303,
        "swapon": 167, "swapoff": 168, "quotactl": 179, "quotactl_fd": 443, "acct": 163, "nfsservctl": 180,
        "iopl": 172, "ioperm": 173, "uselib": 134, "ustat": 136, "sysfs": 139, "_sysctl": 156,
        "vhangup": 153, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "userfaultfd": 323, "clone": 56, "clone3": 435, "socket": 41,
    },
    "aarch64": {
        "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "open_tree": 428, "move_mount": 429,
        "mount_setattr": 442, "init_module": 105, "finit_module": 273, "delete_module": 106,
        "kexec_load": 104, "kexec_file_load": 294, "reboot": 142, "clock_settime": 112, "clock_adjtime": 266,
        "settimeofday": 170, "keyctl": 219, "add_key": 217, "request_key": 218, "bpf": 280,
        "perf_event_open": 241, "lookup_dcookie": 18, "open_by_handle_at": 265, "name_to_handle_at": 264,
        "swapon": 224, "swapoff": 225, "quotactl": 60, "quotactl_fd": 443, "acct": 89, "nfsservctl": 42,
        "vhangup": 58, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "userfaultfd": 282, "clone": 220, "clone3": 435, "socket": 198,
    },
}

# AUDIT_ARCH_* (linux/audit.h): the ELF machine, 64-bit and little-endian bits.
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000

# clone(2) flags that make a namespace (linux/sched.h). CLONE_NEWTIME is left
# out: clone() reads that bit as part of the exit signal; only clone3 and
# unshare can ask for a time namespace, and both are refused.
CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

# Classic BPF (linux/filter.h, linux/bpf_common.h) and the filter's answers.
LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0 = 0, 4, 16


def refused(machine: str) -> list[str]:
    """The names refused on ``machine`` (those its kernel has), in REFUSED's order."""
    numbers = NUMBERS.get(machine, {})
    return [name for names in REFUSED.values() for name in names if name in numbers]


def program(machine: str) -> list[tuple[int, int, int, int]] | None:
    """The filter for ``machine`` as (code, jt, jf, k) instructions, or None
    when this module has no system call table for it."""
    numbers = NUMBERS.get(machine)
    if numbers is None:
        return None
    # Built with labels, then each jump resolved to an offset from the next instruction.
    code: list[tuple] = [
        (LD_W_ABS, None, None, OFFSET_ARCH),
        (JEQ_K, "nr", "enosys", AUDIT_ARCH[machine]),
        ("nr",),
        (LD_W_ABS, None, None, OFFSET_NR),
    ]
    if machine == "x86_64":
        code.append((JGE_K, "enosys", None, X32_SYSCALL_BIT))
    code += [(JEQ_K, "eperm", None, numbers[name]) for name in refused(machine)]
    code += [
        (JEQ_K, "clone", None, numbers["clone"]),
        (JEQ_K, "enosys", None, numbers["clone3"]),
        (JEQ_K, "socket", None, numbers["socket"]),
        (RET_K, None, None, RET_ALLOW),
        ("clone",),
        (LD_W_ABS, None, None, OFFSET_ARG0),          # the low 32 bits of the flags
        (JSET_K, "eperm", None, CLONE_NAMESPACES),
        (RET_K, None, None, RET_ALLOW),
        ("socket",),
        (LD_W_ABS, None, None, OFFSET_ARG0),          # the family: an int, so its low 32 bits
        *[(JEQ_K, "eperm", None, family) for family in REFUSED_FAMILIES.values()],
        (RET_K, None, None, RET_ALLOW),
        ("eperm",),
        (RET_K, None, None, RET_ERRNO | errno.EPERM),
        ("enosys",),
        (RET_K, None, None, RET_ERRNO | errno.ENOSYS),
    ]
    labels, out = {}, []
    for item in code:
        if len(item) == 1:
            labels[item[0]] = len(out)
        else:
            out.append(item)
    resolved = []
    for i, (op, jt, jf, k) in enumerate(out):
        def offset(label, i=i):
            if label is None:
                return 0
            off = labels[label] - (i + 1)
            assert 0 <= off < 256, "a BPF jump reaches at most 255 instructions ahead"
            return off
        resolved.append((op, offset(jt), offset(jf), k))
    return resolved


def pack(instructions: list[tuple[int, int, int, int]]) -> bytes:
    """``struct sock_filter[]``: u16 code, u8 jt, u8 jf, u32 k, native byte order."""
    return b"".join(struct.pack("=HBBI", *ins) for ins in instructions)


def run(instructions: list[tuple[int, int, int, int]], arch: int, nr: int, args: tuple[int, ...] = ()) -> int:
    """What the filter answers for one system call: a small interpreter of the
    instructions used above, so tests can read every rule back without a kernel."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, *(list(args) + [0] * (6 - len(args))))
    pc, acc = 0, 0
    while True:
        op, jt, jf, k = instructions[pc]
        pc += 1
        if op == LD_W_ABS:
            acc = struct.unpack_from("<I", data, k)[0]
        elif op == RET_K:
            return k
        elif op in (JEQ_K, JGE_K, JSET_K):
            hit = acc == k if op == JEQ_K else acc >= k if op == JGE_K else bool(acc & k)
            pc += jt if hit else jf
        else:
            raise ValueError(f"unknown BPF instruction {op:#x}")
