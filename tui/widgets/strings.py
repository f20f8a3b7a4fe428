"""The words of the lab panel and the terminal, in English and Chinese.

One dict, ``{key: {"en": ..., "zh": ...}}``, so the app can merge it into its
own catalog (``tui.i18n``) as it is; both languages carry the same keys and
the same ``{placeholders}`` (``tests/test_widgets_model.py`` checks that).
Commands, paths and flags stay out of here, as in ``tui.i18n``: they are the
same in every language.

Chinese is written as a native technical writer would: 进程, 命名空间, 挂载点,
宿主机, 镜像层, 可写层; a space between Chinese and Latin text.

No Textual here: the pure models (:mod:`tui.widgets.lab_model`) use it too.
"""

from __future__ import annotations

LANGS = ("en", "zh")

STRINGS: dict[str, dict[str, str]] = {
    # -- the panel -----------------------------------------------------------------
    "lab.title": {"en": "Lab", "zh": "实验环境"},
    "lab.title.selected": {"en": "Lab · {name}", "zh": "实验环境 · {name}"},
    "lab.empty": {"en": "No containers yet. Run one from the lesson and it shows up here.",
                  "zh": "还没有容器。在课程里运行一个，它就会出现在这里。"},
    "lab.unreachable": {"en": "The engine cannot be reached: {error}",
                        "zh": "连不上引擎：{error}"},
    "lab.not_running": {"en": "{name} is not running ({status}): nothing to show here.",
                        "zh": "{name} 没有在运行（{status}），这里没有可显示的内容。"},
    "lab.starting": {"en": "{name} is being started, stage by stage: this is what is built so far.",
                     "zh": "{name} 正在分阶段启动：下面是目前已经搭建好的部分。"},
    "lab.none_selected": {"en": "Select a container above.", "zh": "请在上方选择一个容器。"},

    # -- tabs ------------------------------------------------------------------------
    "tab.processes": {"en": "Processes", "zh": "进程"},
    "tab.namespaces": {"en": "Namespaces", "zh": "命名空间"},
    "tab.mounts": {"en": "Mounts", "zh": "挂载点"},
    "tab.network": {"en": "Network", "zh": "网络"},
    "tab.resources": {"en": "Resources", "zh": "资源"},
    "tab.transcript": {"en": "What happened", "zh": "启动过程"},

    # -- the container list -------------------------------------------------------------
    "col.name": {"en": "name", "zh": "名称"},
    "col.role": {"en": "from", "zh": "来源"},
    "col.status": {"en": "status", "zh": "状态"},
    "col.image": {"en": "image", "zh": "镜像"},
    "col.command": {"en": "command", "zh": "命令"},
    "role.lesson": {"en": "lesson {lesson}", "zh": "课程 {lesson}"},
    "role.lesson_step": {"en": "lesson {lesson} · {step}", "zh": "课程 {lesson} · {step}"},
    "role.yours": {"en": "yours", "zh": "你的"},
    "status.running": {"en": "running", "zh": "运行中"},
    "status.created": {"en": "created", "zh": "已创建"},
    "status.starting": {"en": "starting", "zh": "启动中"},
    "status.exited": {"en": "exited ({code})", "zh": "已退出（{code}）"},
    "status.oom": {"en": "killed: out of memory", "zh": "因内存不足被杀掉"},
    "status.other": {"en": "{status}", "zh": "{status}"},

    # -- processes -------------------------------------------------------------------------
    "col.pid": {"en": "PID", "zh": "PID"},
    "col.host_pid": {"en": "host PID", "zh": "宿主机 PID"},
    "col.user": {"en": "user", "zh": "用户"},
    "col.host_user": {"en": "host user", "zh": "宿主机用户"},
    "col.state": {"en": "state", "zh": "状态"},
    "col.rss": {"en": "memory", "zh": "内存"},
    "proc.exec": {"en": "(exec: joined from outside)", "zh": "（exec：从外部加入）"},
    "proc.count": {"en": "{count} processes.", "zh": "共 {count} 个进程。"},
    "proc.count.one": {"en": "One process.", "zh": "只有 1 个进程。"},
    "proc.pid1": {"en": "PID 1 inside is PID {host_pid} on the host: one process, two numbers.",
                  "zh": "容器里的 1 号进程在宿主机上是 {host_pid} 号：同一个进程，两个编号。"},
    "proc.pidn": {"en": "PID {pid} inside is PID {host_pid} on the host.",
                  "zh": "容器里的 {pid} 号进程在宿主机上是 {host_pid} 号。"},
    "proc.no_pid1": {"en": "No PID 1 here: its PID namespace is another container's.",
                     "zh": "这里没有 1 号进程：它用的是另一个容器的 PID 命名空间。"},
    "proc.note.userns": {"en": "Root inside is uid {uid} on the host: a user namespace maps them.",
                         "zh": "容器里的 root 在宿主机上是 uid {uid}：由用户命名空间映射而来。"},
    "proc.none": {"en": "No processes: the container has just exited.",
                  "zh": "没有进程：容器刚刚退出。"},
    "state.R": {"en": "running", "zh": "运行"},
    "state.S": {"en": "sleeping", "zh": "睡眠"},
    "state.D": {"en": "disk wait", "zh": "等待 I/O"},
    "state.Z": {"en": "zombie", "zh": "僵尸"},
    "state.T": {"en": "stopped", "zh": "已暂停"},
    "state.t": {"en": "traced", "zh": "被跟踪"},
    "state.I": {"en": "idle", "zh": "空闲"},

    # -- namespaces ------------------------------------------------------------------------
    "col.ns": {"en": "namespace", "zh": "命名空间"},
    "col.ns_container": {"en": "container", "zh": "本容器"},
    "col.ns_host": {"en": "host", "zh": "宿主机"},
    "col.ns_status": {"en": "isolation", "zh": "隔离情况"},
    "col.ns_what": {"en": "what it isolates", "zh": "隔离的内容"},
    "ns.isolated": {"en": "isolated", "zh": "隔离"},
    "ns.shared_host": {"en": "shared with host", "zh": "与宿主机共享"},
    "ns.shared_with": {"en": "shared with {names}", "zh": "与 {names} 共享"},
    "ns.changed": {"en": "changed", "zh": "有变化"},
    "ns.what.pid": {"en": "process IDs", "zh": "进程编号"},
    "ns.what.mnt": {"en": "mount table", "zh": "挂载表"},
    "ns.what.net": {"en": "network stack", "zh": "网络栈"},
    "ns.what.uts": {"en": "hostname", "zh": "主机名"},
    "ns.what.ipc": {"en": "System V IPC, message queues", "zh": "进程间通信对象、消息队列"},
    "ns.what.user": {"en": "user and group IDs", "zh": "用户与用户组 ID"},
    "ns.what.cgroup": {"en": "view of the cgroup tree", "zh": "所见的控制组树"},
    "ns.what.time": {"en": "boot and monotonic clocks", "zh": "启动时钟与单调时钟"},
    "ns.note": {"en": "Numbers are namespace inodes: equal means shared. The host's are read from {reference}.",
                "zh": "数字是命名空间的 inode：相同即为共享。宿主机的编号读自{reference}。"},
    "ns.ref.host": {"en": "the host's PID 1", "zh": "宿主机的 1 号进程"},
    "ns.ref.self": {"en": "this app's own process", "zh": "本程序自己的进程"},
    "ns.none": {"en": "No namespaces to show: the container is not running.",
                "zh": "没有可显示的命名空间：容器没有在运行。"},

    # -- mounts ---------------------------------------------------------------------------------
    "mnt.layers": {"en": "Image layers (read-only, shared by every container of the image)",
                   "zh": "镜像层（只读，同一镜像的所有容器共享）"},
    "mnt.layer": {"en": "layer {n}", "zh": "第 {n} 层"},
    "mnt.writable": {"en": "writable", "zh": "可写层"},
    "mnt.upper": {"en": "Writable layer (this container's alone)",
                  "zh": "可写层（容器存储层，只属于这个容器）"},
    "mnt.changes": {"en": "Changes in the writable layer", "zh": "可写层里的改动"},
    "mnt.no_changes": {"en": "no changes yet", "zh": "还没有改动"},
    "mnt.change.A": {"en": "added", "zh": "新增"},
    "mnt.change.C": {"en": "changed", "zh": "修改"},
    "mnt.change.D": {"en": "deleted", "zh": "删除"},
    "mnt.table": {"en": "Mount table as the container sees it", "zh": "容器看到的挂载表"},
    "col.target": {"en": "mount point", "zh": "挂载点"},
    "col.fstype": {"en": "type", "zh": "类型"},
    "col.source": {"en": "source", "zh": "来源"},
    "col.options": {"en": "options", "zh": "选项"},
    "mnt.note": {"en": "/ is an overlay (a union filesystem): the image layers below, the writable "
                       "layer on top. Writes are copied up; the image never changes.",
                 "zh": "/ 是一个 overlay（联合文件系统）：下面是镜像层，上面是可写层。"
                       "写入时先复制到可写层（写时复制），镜像本身从不改变。"},
    "mnt.none": {"en": "No mounts to show: the container is not running.",
                 "zh": "没有可显示的挂载点：容器没有在运行。"},

    # -- network ------------------------------------------------------------------------------------
    "net.interfaces": {"en": "Interfaces", "zh": "网络接口"},
    "net.addresses": {"en": "Addresses", "zh": "地址"},
    "net.routes": {"en": "Routes", "zh": "路由"},
    "net.no_routes": {"en": "no routes: nothing beyond this namespace can be reached",
                      "zh": "没有路由：这个命名空间之外的地方都到不了"},
    "col.if": {"en": "interface", "zh": "接口"},
    "col.kind": {"en": "kind", "zh": "类型"},
    "col.if_state": {"en": "state", "zh": "状态"},
    "col.mtu": {"en": "MTU", "zh": "MTU"},
    "col.mac": {"en": "MAC", "zh": "MAC"},
    "col.rxtx": {"en": "received / sent", "zh": "收 / 发"},
    "col.family": {"en": "family", "zh": "协议族"},
    "col.address": {"en": "address", "zh": "地址"},
    "col.scope": {"en": "scope", "zh": "范围"},
    "col.dst": {"en": "destination", "zh": "目的地址"},
    "col.gateway": {"en": "gateway", "zh": "网关"},
    "col.dev": {"en": "device", "zh": "设备"},
    "col.prefsrc": {"en": "source address", "zh": "源地址"},
    "if.up": {"en": "up", "zh": "已启用"},
    "if.down": {"en": "down", "zh": "未启用"},
    "net.note.none": {"en": "Only a loopback device: this container has a network stack of its "
                            "own, with no way out.",
                      "zh": "只有回环设备：这个容器有自己的网络栈，但没有通向外面的路。"},
    "net.note.host": {"en": "This is the host's own network stack: the container shares it.",
                      "zh": "这就是宿主机自己的网络栈：容器与宿主机共用。"},
    "net.note.own": {"en": "The container's own network stack, read inside its network namespace.",
                     "zh": "容器自己的网络栈，在它的网络命名空间里读出。"},
    "net.unavailable": {"en": "The network cannot be read: {why}", "zh": "读不到网络信息：{why}"},

    # -- resources ------------------------------------------------------------------------------------
    "res.memory": {"en": "memory", "zh": "内存"},
    "res.pids": {"en": "processes", "zh": "进程数"},
    "res.cpu": {"en": "CPU", "zh": "CPU"},
    "res.history": {"en": "  history", "zh": "  历史"},
    "res.of": {"en": "{used} of {limit}", "zh": "{used} / {limit}"},
    "res.no_limit": {"en": "{used}, no limit", "zh": "{used}，不限"},
    "res.cores": {"en": "{cores} cores", "zh": "{cores} 核"},
    "res.unknown": {"en": "unknown", "zh": "未知"},
    "res.none": {"en": "No control group: the kernel keeps no count for this container.",
                 "zh": "没有控制组：内核不为这个容器计数。"},
    "res.note": {"en": "Usage and limits from the container's control group (cgroup); "
                       "the kernel enforces the limits.",
                 "zh": "用量与限额读自容器的控制组（cgroup），限额由内核强制执行。"},
    "res.events": {"en": "Events", "zh": "事件"},
    "res.no_events": {"en": "nothing yet", "zh": "暂无"},
    "ev.oom": {"en": "out of memory: the kernel killed {count} processes",
               "zh": "内存不足：内核杀掉了 {count} 个进程"},
    "ev.oom.one": {"en": "out of memory: the kernel killed a process",
                   "zh": "内存不足：内核杀掉了 1 个进程"},
    "ev.pids-limit-hit": {"en": "process limit reached {count} times: fork() failed",
                          "zh": "进程数达到上限 {count} 次：fork() 失败"},
    "ev.pids-limit-hit.one": {"en": "process limit reached once: fork() failed",
                              "zh": "进程数达到上限 1 次：fork() 失败"},
    "ev.started": {"en": "started", "zh": "已启动"},
    "ev.created": {"en": "created", "zh": "已创建"},
    "ev.exited": {"en": "exited with code {code}", "zh": "已退出，退出码 {code}"},
    "ev.exited_oom": {"en": "killed: out of memory (code {code})",
                      "zh": "因内存不足被杀掉（退出码 {code}）"},
    "ev.exec": {"en": "exec: {cmd}", "zh": "exec：{cmd}"},
    "ev.exec-exited": {"en": "exec ended with code {code}", "zh": "exec 结束，退出码 {code}"},
    "ev.kill": {"en": "signal {signal} sent", "zh": "已发送信号 {signal}"},
    "ev.removed": {"en": "removed", "zh": "已删除"},

    # -- what happened ----------------------------------------------------------------------------------
    "tr.note": {"en": "{count} stages in {ms} ms, from nothing to a running process.",
                "zh": "共 {count} 个阶段，用时 {ms} 毫秒：从无到一个运行中的进程。"},
    "tr.stage": {"en": "{n}. {title}", "zh": "{n}. {title}"},
    "tr.ms": {"en": "{ms} ms", "zh": "{ms} 毫秒"},
    "tr.none": {"en": "No record of this container's start.", "zh": "没有这个容器的启动记录。"},

    # -- the terminal ---------------------------------------------------------------------------------
    "term.title": {"en": "Terminal · {key} back to the lesson",
                   "zh": "终端 · 按 {key} 回到课程"},
    "term.closed": {"en": "The shell has ended (exit code {code}).",
                    "zh": "shell 已结束（退出码 {code}）。"},
    "term.closed_unknown": {"en": "The shell has ended.", "zh": "shell 已结束。"},
    "term.scrolled": {"en": "scrolled back {lines} lines · shift+PageDown returns",
                      "zh": "已向上回滚 {lines} 行 · shift+PageDown 返回"},
}


def tr(key: str, lang: str, /, **fields) -> str:
    """``key`` in ``lang`` (English when the language is unknown), ``fields`` filled in."""
    entry = STRINGS[key]
    text = entry.get(lang) or entry["en"]
    return text.format(**fields) if fields else text


def counted(key: str, lang: str, count: int, /, **fields) -> str:
    """``key`` for ``count`` things: ``key.one`` when there is one (and the catalog has it)."""
    return tr(f"{key}.one" if count == 1 and f"{key}.one" in STRINGS else key, lang, count=count, **fields)


def catalog(lang: str) -> dict[str, str]:
    """The strings of one language, flat: ``{key: text}`` (for merging into ``tui.i18n``)."""
    return {key: entry[lang] for key, entry in STRINGS.items()}
