"""The built-in ``lab`` image, assembled offline from the host's own binaries.

Each tool is copied with the shared libraries ``ldd`` says it needs (the
dynamic loader included) into a merged-/usr layout like modern Debian's: /bin,
/sbin, /lib and /lib64 are symlinks into /usr. Host symlinks are kept as
symlinks (``sh -> dash``, ``libc.so.6`` chains), so the image looks like a
small Debian. Account files are generated, never copied from the host.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess

from engine.errors import ImageError
from engine.images.layer import Entry

REQUIRED_TOOLS = ("sh", "bash")
OPTIONAL_TOOLS = (
    # coreutils
    "ls", "cat", "echo", "rm", "mkdir", "rmdir", "touch", "cp", "mv", "ln",
    "head", "tail", "wc", "sort", "uniq", "cut", "tr", "env", "id", "whoami",
    "uname", "date", "sleep", "true", "false", "printf", "test", "[",
    "readlink", "realpath", "chmod", "chown", "df", "du", "yes", "nproc",
    "basename", "dirname", "tee", "seq", "stat", "md5sum", "sha256sum",
    "tty", "stty", "mknod", "mkfifo", "dd", "find", "xargs", "awk", "vi",
    "more", "watch", "uptime", "lsblk", "chroot", "setpriv", "capsh", "getpcaps",
    # text, processes, system
    "grep", "sed", "ps", "top", "pgrep", "pkill", "kill", "free", "pstree",
    "hostname", "mount", "umount", "findmnt", "lsns", "unshare", "nsenter",
    "ipcs", "ipcmk", "ipcrm", "ip", "ping",
    # terminal
    "clear", "less", "tput",
    # the login shell of `nobody` in the generated /etc/passwd
    "nologin",
    # networking lessons: busybox (Debian's busybox-static) gives the applets below
    "busybox",
)
# Busybox applets the networking lessons use -- a web server, a TCP/UDP
# Swiss army knife, a downloader, a DNS lookup -- linked to /usr/bin/busybox
# where the host has no tool of that name of its own.
BUSYBOX_APPLETS = ("httpd", "nc", "wget", "nslookup")
TERMINALS = (
    "xterm", "xterm-256color", "screen", "screen-256color", "tmux",
    "tmux-256color", "linux", "vt100", "dumb",
)
# Where the host may keep tools and terminfo, in lookup order.
HOST_BIN_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")
HOST_TERMINFO_DIRS = ("/etc/terminfo", "/lib/terminfo", "/usr/share/terminfo")
# Top-level directories that are symlinks into /usr in the image.
MERGED_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")

CONFIG = {
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "Cmd": ["/bin/bash"],
    "WorkingDir": "/",
    # The recipe's version: a store whose lab image was assembled by an older
    # recipe assembles it again (ImageStore._load_lab).
    "Labels": {"org.container-lab.image": "lab", "org.container-lab.recipe": "2"},
}

PASSWD = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
GROUP = "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"
OS_RELEASE = (
    'PRETTY_NAME="container-lab lab image"\n'
    'NAME="container-lab lab image"\n'
    "ID=container-lab\n"
)
NSSWITCH = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n"
BASHRC = r"""# container-lab: an interactive shell shows root@<hostname>:/#
[ -z "$PS1" ] && return
PS1='\u@\h:\w\$ '
alias ls='ls --color=auto'
alias grep='grep --color=auto'
"""
PROFILE = """# container-lab: login shells read the same settings as interactive ones
if [ -n "$BASH_VERSION" ] && [ -f /etc/bash.bashrc ]; then
    . /etc/bash.bashrc
fi
"""
ROOT_PROFILE = '[ -n "$BASH_VERSION" ] && [ -f ~/.bashrc ] && . ~/.bashrc\n'

# Directories every image needs: (path, mode). Runtimes mount over most of them.
BASE_DIRS = (
    ("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("run", 0o755),
    ("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700), ("home", 0o755),
    ("mnt", 0o755), ("etc", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755),
    ("usr/lib", 0o755), ("usr/local/bin", 0o755),
)
SYMLINK_DEPTH_MAX = 40  # as the kernel's ELOOP limit
# "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "\t/lib64/ld-linux-x86-64.so.2 (0x...)"
_LDD_LIB = re.compile(r"\s+(?:\S+ => )?(\S+) \(0x[0-9a-f]+\)")


class _Tree:
    """The image's files, keyed by path inside the image."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def add(self, entry: Entry) -> None:
        self._parents(entry.path)
        self.entries.setdefault(entry.path, entry)

    def _parents(self, path: str) -> None:
        parent = os.path.dirname(path)
        if parent and parent not in self.entries:
            self._parents(parent)
            self.entries[parent] = Entry(parent, "dir", 0o755)

    def add_host(self, host_path: str, depth: int = 0) -> None:
        """Copy a host file, following (and keeping) the symlinks on the way."""
        if depth > SYMLINK_DEPTH_MAX:
            raise ImageError(f"cannot assemble the lab image: too many symlinks at {host_path}")
        real = _canonical_parent(host_path)
        path = _image_path(real)
        if path in self.entries:
            return
        st = os.lstat(real)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(real)
            nxt = os.path.join(os.path.dirname(real), target)
            # A link between /lib and /usr/lib lands on itself in merged /usr:
            # keep the file it points to instead.
            if _image_path(_canonical_parent(nxt)) != path:
                self.add(Entry(path, "symlink", 0o777, target=target))
            self.add_host(nxt, depth + 1)
        elif stat.S_ISREG(st.st_mode):
            self.add(Entry(path, "file", stat.S_IMODE(st.st_mode), source=real))
        else:
            raise ImageError(f"cannot assemble the lab image: {real} is not a file")

    def add_text(self, path: str, text: str, mode: int = 0o644) -> None:
        self.add(Entry(path, "file", mode, data=text.encode()))


def _canonical_parent(path: str) -> str:
    """``path`` with its directory resolved on the host (the last part may be a link)."""
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def _image_path(host_path: str) -> str:
    """Where a (canonical) host path goes in the merged-/usr image."""
    rel = host_path.lstrip("/")
    top, _, rest = rel.partition("/")
    return f"usr/{rel}" if top in MERGED_DIRS and rest else rel


def _find_tool(name: str) -> str | None:
    for d in HOST_BIN_DIRS:
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def _is_elf(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def _shared_libraries(binaries: list[str]) -> dict[str, list[str] | None]:
    """Map each binary to the host paths of the libraries it loads (the loader
    included), or to None when ldd finds one missing or says nothing about it."""
    ldd = shutil.which("ldd", path="/usr/bin:/bin")
    if ldd is None:
        raise ImageError("cannot assemble the lab image: ldd is missing (Debian: apt install libc-bin)")
    # A clean environment: LD_LIBRARY_PATH and friends must not change the answer.
    proc = subprocess.run(
        [ldd, *binaries], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    )
    libs: dict[str, list[str]] = {}
    missing: set[str] = set()
    # One section per binary, headed "<binary>:" -- unless there is only one.
    current = binaries[0] if len(binaries) == 1 else None
    if current:
        libs[current] = []
    for line in proc.stdout.splitlines():
        if not line[:1].isspace():
            header = line.removesuffix(":")
            current = header if header in binaries else None
            if current:
                libs[current] = []
        elif current is None:
            continue
        elif line.endswith("=> not found"):
            missing.add(current)
        elif (m := _LDD_LIB.match(line)) and m[1].startswith("/"):
            libs[current].append(m[1])
        # else: the vDSO (the kernel provides it) or "statically linked"
    return {b: libs[b] if b in libs and b not in missing else None for b in binaries}


def build_entries() -> list[Entry]:
    """Every entry of the lab image's single layer, read from the host."""
    tree = _Tree()
    for path, mode in BASE_DIRS:  # first, so that their modes win
        tree.add(Entry(path, "dir", mode))

    tools = {name: _find_tool(name) for name in REQUIRED_TOOLS + OPTIONAL_TOOLS}
    for name in REQUIRED_TOOLS:
        if tools[name] is None:
            raise ImageError(f"cannot assemble the lab image: the host has no /bin/{name}")
    found = {name: p for name, p in tools.items() if p is not None}
    elves = sorted({os.path.realpath(p) for p in found.values() if _is_elf(p)})
    libs = _shared_libraries(elves) if elves else {}
    for name, p in found.items():
        needed = libs.get(os.path.realpath(p), [])  # scripts need no libraries
        if needed is None:
            if name in REQUIRED_TOOLS:
                raise ImageError(f"cannot assemble the lab image: {p} needs a library the host lacks")
            continue  # an optional tool that could not run: leave it out
        tree.add_host(p)
        for lib in needed:
            tree.add_host(lib)

    if "busybox" in found:
        for applet in BUSYBOX_APPLETS:
            if f"usr/bin/{applet}" not in tree.entries and f"usr/sbin/{applet}" not in tree.entries:
                tree.add(Entry(f"usr/bin/{applet}", "symlink", 0o777, target="busybox"))

    for term in TERMINALS:
        for d in HOST_TERMINFO_DIRS:
            p = os.path.join(d, term[0], term)
            if os.path.isfile(p):
                tree.add(Entry(f"usr/share/terminfo/{term[0]}/{term}", "file", 0o644, source=os.path.realpath(p)))
                break

    tree.add_text("etc/passwd", PASSWD)
    tree.add_text("etc/group", GROUP)
    tree.add_text("etc/os-release", OS_RELEASE)
    tree.add_text("etc/nsswitch.conf", NSSWITCH)
    tree.add_text("etc/profile", PROFILE)
    tree.add_text("etc/bash.bashrc", BASHRC)
    tree.add_text("root/.bashrc", BASHRC)
    tree.add_text("root/.profile", ROOT_PROFILE)
    for path in ("etc/hostname", "etc/hosts", "etc/resolv.conf"):
        tree.add_text(path, "")  # the runtime bind-mounts over these

    for d in MERGED_DIRS:
        if f"usr/{d}" in tree.entries:
            tree.add(Entry(d, "symlink", 0o777, target=f"usr/{d}"))
    return list(tree.entries.values())
