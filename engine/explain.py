"""What each stage of a container's start does, in plain words (English and 中文).

``run --explain`` prints these beside the kernel operations and the shell
commands of the transcript (:class:`engine.transcript.Transcript`); the app's
step-through start shows the same texts. Keyed by stage id; both languages
hold exactly the same keys (a test checks it).
"""

from __future__ import annotations

LANGUAGES = ("en", "zh")

STAGES: dict[str, dict[str, str]] = {
    "limits": {
        "title.en": "Create the container's control group and write its limits",
        "title.zh": '创建容器的控制组并写入限额',
        "en": "A control group (cgroup) is a folder in /sys/fs/cgroup that the kernel uses to count and "
              "limit what a group of processes uses. The engine makes one for this container and writes "
              "its limits into it: memory, number of processes, CPU.",
        "zh": "控制组（cgroup）是 /sys/fs/cgroup 下的一个目录，内核用它统计并限制一组进程所用的资源。"
              "引擎为这个容器新建一个控制组，并写入它的限额：内存、进程数和 CPU。",
    },
    "fork": {
        "title.en": 'Fork the first process',
        "title.zh": 'fork 出第一个进程',
        "en": "The engine forks the process that will become the container. Because the fork happens "
              "after unshare(CLONE_NEWPID), the child is the first process of a new PID namespace: "
              "it is PID 1 inside, while the host knows it by an ordinary PID.",
        "zh": "引擎 fork 出将要成为容器的进程。由于 fork 发生在 unshare(CLONE_NEWPID) 之后，"
              "子进程是新 PID 命名空间里的第一个进程：在容器里它是 1 号进程，在宿主机上它只是一个普通的 PID。",
    },
    "cgroup": {
        "title.en": "Put the first process in the container's control group",
        "title.zh": '把第一个进程放进容器的控制组',
        "en": "The new process is moved into the container's control group by writing its PID into "
              "cgroup.procs. From now on, it and every process it starts are counted against the limits.",
        "zh": "把新进程的 PID 写入 cgroup.procs，它就进入了容器的控制组。从此它以及它启动的所有进程，"
              "都要受这些限额的约束。",
    },
    "namespaces": {
        "title.en": "Create the container's namespaces",
        "title.zh": '创建容器的命名空间',
        "en": "unshare() gives the process its own copies of kernel resources: a mount table (mount), "
              "a hostname (UTS), System V IPC objects (IPC) and a network stack (net) with only a "
              "loopback device. Changes made in them are invisible to the host, and the host's to them.",
        "zh": "unshare() 让进程拥有自己的一份内核资源：挂载表（mount）、主机名（UTS）、System V 进程间通信对象（IPC），"
              "以及只有回环设备的网络栈（net）。在其中所做的修改宿主机看不到，宿主机的修改它也看不到。",
    },
    "propagation": {
        "title.en": 'Make every mount private, so nothing leaks to the host',
        "title.zh": '把所有挂载点设为私有，不让任何挂载泄漏到宿主机',
        "en": "On most hosts / is a shared mount: a mount made below it would show up on the host too. "
              "Making every mount private, before mounting anything, keeps all that follows inside "
              "the container's mount namespace.",
        "zh": "在大多数宿主机上，/ 是共享挂载：在它下面挂载的东西也会出现在宿主机上。"
              "在挂载任何东西之前先把所有挂载点设为私有，之后的一切就只留在容器的挂载命名空间里。",
    },
    "rootfs": {
        "title.en": 'Mount the image layers and the writable layer (overlayfs)',
        "title.zh": '挂载镜像层和可写层（overlayfs）',
        "en": "The image's layers are stacked with overlayfs, a union filesystem: the image layers below, "
              "read-only and shared by every container of this image, and on top an empty writable layer "
              "that belongs to this container alone. Every change the container makes lands there "
              "(copy-on-write); the image is never touched.",
        "zh": "用联合文件系统 overlayfs 把镜像层叠起来：下面是只读的镜像层，由同一镜像的所有容器共享；"
              "上面是一层空的可写层，只属于这个容器。容器做的所有修改都落在这一层（写时复制），镜像本身从不改变。",
    },
    "proc": {
        "title.en": 'Mount a fresh /proc; mask what a container must not see',
        "title.zh": '挂载全新的 /proc，遮蔽容器不该看到的内容',
        "en": "A fresh /proc is mounted for the new PID namespace, so ps inside lists only the container's "
              "processes. Paths that would reveal or change the host (/proc/kcore, /proc/sys ...) are "
              "hidden or made read-only, as Docker does.",
        "zh": "为新的 PID 命名空间挂载一个全新的 /proc，于是容器里的 ps 只列出容器自己的进程。"
              "会暴露或改动宿主机的路径（/proc/kcore、/proc/sys 等）被遮蔽或设为只读，与 Docker 的做法相同。",
    },
    "dev": {
        "title.en": 'Give the container a minimal /dev',
        "title.zh": '为容器准备精简的 /dev',
        "en": "The container gets a small /dev of its own: null, zero, random, tty and a few more, its own "
              "pseudo-terminal space (/dev/pts) and shared memory (/dev/shm). The host's disks are not there.",
        "zh": "容器得到一个自己的精简 /dev：null、zero、random、tty 等少数设备，独立的伪终端空间（/dev/pts）"
              "和共享内存（/dev/shm）。宿主机的磁盘设备不在其中。",
    },
    "cgroupns": {
        "title.en": "Create a cgroup namespace rooted at the container's cgroup",
        "title.zh": '创建以容器控制组为根的控制组命名空间',
        "en": "A cgroup namespace makes the container's own control group look like the root of the "
              "cgroup tree, so the container cannot see where it sits on the host.",
        "zh": "控制组命名空间让容器自己的控制组看起来就是控制组树的根，容器因此看不到自己在宿主机上的位置。",
    },
    "sys": {
        "title.en": "Mount /sys read-only, with the container's own cgroup tree",
        "title.zh": '以只读方式挂载 /sys，并放入容器自己的控制组树',
        "en": "/sys is mounted read-only, with the container's control group at /sys/fs/cgroup, so "
              "programs inside can read their own limits but change nothing on the host.",
        "zh": "/sys 以只读方式挂载，容器的控制组出现在 /sys/fs/cgroup，容器内的程序能读到自己的限额，"
              "却改不了宿主机上的任何东西。",
    },
    "pivot_root": {
        "title.en": "Make the container's file system the root; detach the host's",
        "title.zh": '把容器的文件系统设为根，卸下宿主机的根',
        "en": "pivot_root makes the overlay the root directory of the container and detaches the host's "
              "root. Unlike chroot, the old root is really gone from the mount table: there is no "
              "path back to the host's files.",
        "zh": "pivot_root 把 overlay 设为容器的根目录，并卸下宿主机的根。与 chroot 不同，旧的根从挂载表中彻底消失，"
              "再没有路径能回到宿主机的文件。",
    },
    "hostname": {
        "title.en": 'Give the container its own hostname',
        "title.zh": '为容器设置自己的主机名',
        "en": "In its own UTS namespace the container gets its own hostname (by default its short id). "
              "The host's name does not change.",
        "zh": "容器在自己的 UTS 命名空间里设置自己的主机名（默认是它的短 ID），宿主机的主机名不受影响。",
    },
    "tty": {
        "title.en": 'Open a pseudo-terminal inside the container',
        "title.zh": '在容器内打开伪终端',
        "en": "A pseudo-terminal is opened in the container's own /dev/pts and becomes its controlling "
              "terminal; the engine keeps the other end, so you can type into the container.",
        "zh": "在容器自己的 /dev/pts 中打开一个伪终端，作为它的控制终端；另一端由引擎持有，你就可以向容器输入了。",
    },
    "user": {
        "title.en": 'Enter a new user namespace',
        "title.zh": '进入新的用户命名空间',
        "en": "A new user namespace: the supervisor writes uid_map and gid_map, and uid 0 inside becomes an "
              "unprivileged uid on the host. The process is root in the container and nobody special outside.",
        "zh": "新的用户命名空间：守护进程写入 uid_map 和 gid_map，容器内的 uid 0 对应宿主机上一个无特权的 uid。"
              "进程在容器里是 root，在宿主机上却只是普通用户。",
    },
    "seccomp": {
        "title.en": "Filter the system calls the container may make (seccomp)",
        "title.zh": '过滤容器可以发起的系统调用（seccomp）',
        "en": "A seccomp filter is a small program the kernel runs on every system call of the "
              "container. It refuses, with \"Operation not permitted\", the calls Docker's default "
              "profile refuses: making or joining namespaces (unshare, setns), mounting, loading kernel "
              "modules, rebooting, setting the clock, kernel keyrings, bpf. Most of them would fail "
              "anyway for want of a capability; the filter is a second wall, should a kernel bug open "
              "the first.",
        "zh": "seccomp 过滤器是一段小程序，容器每发起一次系统调用，内核都会先运行它。Docker 默认配置拒绝的调用，"
              "它同样拒绝，返回 “Operation not permitted”：创建或加入命名空间（unshare、setns）、挂载、加载内核模块、"
              "重启、修改时钟、内核密钥环、bpf。这些调用大多本来就会因缺少相应的能力而失败；过滤器是第二道墙，"
              "万一内核的漏洞让第一道墙失守，它仍然挡在那里。",
    },
    "capabilities": {
        "title.en": "Keep only Docker's default capabilities",
        "title.zh": '只保留 Docker 默认的能力',
        "en": "Root's powers are split into capabilities. The container keeps only Docker's default 14 "
              "(chown, kill, net_bind_service ...); it loses the rest, such as sys_admin (mount), "
              "sys_module (load kernel modules) and sys_time (set the clock).",
        "zh": "root 的权力被拆分成一项项能力（capability）。容器只保留 Docker 默认的 14 项（chown、kill、"
              "net_bind_service 等），其余的都被去掉，例如 sys_admin（挂载）、sys_module（加载内核模块）"
              "和 sys_time（修改时钟）。",
    },
    "init": {
        "title.en": "Run a real init as PID 1 (tini), from a sealed copy in memory",
        "title.zh": '以密封的内存副本运行真正的 init（tini）作为 1 号进程',
        "en": "With --init, PID 1 is not your command but tini, a tiny real init, as Docker's --init. "
              "It starts your command as its child, passes signals such as SIGTERM on to it, reaps "
              "orphaned processes, and exits with the command's exit code. The engine runs tini from a "
              "copy in memory (a memfd) sealed against any write, even by root: no file of the host "
              "is the executable of a process the container can see, so the container cannot change "
              "one through /proc/1/exe.",
        "zh": "加上 --init 后，1 号进程不再是你的命令，而是 tini：一个很小但真正的 init，与 Docker 的 --init 相同。"
              "它把你的命令作为子进程启动，把 SIGTERM 等信号转发给它，回收成为孤儿的进程，"
              "并以命令的退出码退出。引擎从内存中的一份副本（memfd）运行 tini，这份副本已被密封，"
              "任何写入都会被拒绝，root 也不例外：容器能看到的进程，没有一个以宿主机上的文件为可执行文件，"
              "容器也就无法通过 /proc/1/exe 改动宿主机的文件。",
    },
    "exec": {
        "title.en": 'Become the user and run the command',
        "title.zh": '切换用户并运行命令',
        "en": "Finally execve replaces the engine's code in this process with your command. Nothing else "
              "runs first: the container is simply this process, isolated.",
        "zh": "最后，execve 用你的命令替换掉这个进程里引擎的代码。之前没有任何别的程序运行："
              "所谓容器，就是这个被隔离起来的进程。",
    },
}

UI: dict[str, dict[str, str]] = {
    "kernel": {"en": "kernel", "zh": "内核"},
    "shell": {"en": "shell", "zh": "命令"},
    "paused": {"en": "Paused: the container {name} is half-built. Look at it from another terminal with "
                     "`container-lab top {name}` or `container-lab inspect {name}`. Press Enter to go on.",
               "zh": "已暂停：容器 {name} 只搭建了一半。可以在另一个终端用 `container-lab top {name}` "
                     "或 `container-lab inspect {name}` 查看它。按回车键继续。"},
    "started": {"en": "Now the container {name} is your command, PID {pid} on the host. Its output follows.",
                "zh": "现在，容器 {name} 就是你的命令了，在宿主机上的 PID 为 {pid}。下面是它的输出。"},
    "other": {"en": "(no explanation for this stage)", "zh": "（此阶段暂无说明）"},
}


def language(explicit: str | None = None) -> str:
    """``explicit`` if given, else the locale's (:func:`engine.lang.detect`, as the app reads it)."""
    from .lang import detect

    return explicit or detect()


def stage_text(stage_id: str, lang: str) -> str:
    """The plain explanation of one stage."""
    return STAGES.get(stage_id, {}).get(lang) or UI["other"][lang]


def stage_title(stage: dict, lang: str) -> str:
    """A stage's title in ``lang`` (the transcript's own, in English, as a fallback)."""
    return STAGES.get(stage.get("id", ""), {}).get(f"title.{lang}") or stage.get("title", "")


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` terminal cells: Latin text breaks at spaces,
    Chinese between any two characters (each of which takes two cells)."""
    import unicodedata

    def cells(ch: str) -> int:
        return 2 if unicodedata.east_asian_width(ch) in "WF" else 1

    lines, line, used = [], "", 0
    for word in _words(text):
        size = sum(cells(ch) for ch in word)
        if used + size > width and line.strip():
            lines.append(line.rstrip())
            line, used = "", 0
            word = word.lstrip()
            size = sum(cells(ch) for ch in word)
        line += word
        used += size
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _words(text: str) -> list[str]:
    """Pieces that must not be split: a Latin word with its leading space, or one wide character."""
    import unicodedata

    out, cur = [], ""
    for ch in text:
        wide = unicodedata.east_asian_width(ch) in "WF"
        if wide or ch == " ":
            if cur:
                out.append(cur)
            cur = ""
            if wide:
                out.append(ch)
                continue
        cur += ch
    if cur:
        out.append(cur)
    return out


def ui(key: str, lang: str, **fields) -> str:
    return UI[key][lang].format(**fields)


def kernel_call(op: dict) -> str:
    """One transcript operation as a kernel call, e.g. ``mount("overlay", "/...", "overlay", nodev, "lowerdir=...")``."""
    call = op.get("call", "?")
    if call == "mount":
        args = [op.get("source"), op.get("target"), op.get("fstype"), op.get("flags") or "0", op.get("data")]
        shown = [repr(a) if isinstance(a, str) and a != args[3] else ("NULL" if a is None else str(a)) for a in args]
        return f"mount({', '.join(shown)})"
    detail = []
    for key, value in op.items():
        if key in ("call", "shell") or value in (None, "", [], {}):
            continue
        if isinstance(value, list) and len(value) > 6:
            value = f"[{len(value)} items]"
        detail.append(f"{key}={value}")
    return f"{call}({', '.join(detail)})"
