"""The app's own words, in English and Chinese: a keyed catalog, one dict per language.

Lesson prose lives with the lessons (``content/``); this catalog holds only the
strings of the app around them. Both languages carry the same keys and the same
``{placeholders}`` -- ``tests/test_tui.py`` checks that parity. Commands, paths
and flags are never in here: they are the same in every language and stay in
the code, so no translation can break one.

Chinese is written, not translated word for word: 容器 container, 镜像 image,
命名空间 namespace, 控制组 cgroup, 宿主机 host; a space between Chinese and Latin
text ("bash 的 PID 是 1"), full-width punctuation in Chinese sentences.

No Textual here: the launcher's one-line notes use this module too.
"""

from __future__ import annotations

import os
from typing import Mapping

LANGS = ("en", "zh")
DEFAULT_LANG = "en"

CATALOG: dict[str, dict[str, str]] = {
    "en": {
        # header, footer, help
        "subtitle": "welcome · early release",
        "key.quit": "Quit",
        "key.lang": "中文",             # the footer names the language `l` switches *to*
        "key.help": "Help",
        "help.title": "Keys",
        "help.lang": "switch language: English ↔ 中文",
        "help.quit": "quit",
        "help.help": "show or close this help",
        "help.scroll": "scroll",
        "help.cli": "lists the engine's commands: run, ps, rm, images …",
        "help.close": "Esc closes this help.",
        # what it is
        "about.title": "What is container-lab",
        "about.body": "A terminal course, in English and Chinese, that shows what a container "
                      "really is by running real ones. A container is not a small virtual "
                      "machine: it is a group of ordinary processes on the host's kernel, "
                      "isolated by namespaces, limited by cgroups, with a filesystem of its own.",
        "about.preview": "Early release: the container engine and this screen. The lessons, "
                         "with a live lab panel beside them, arrive in a later release.",
        # this machine
        "machine.title": "This machine",
        "check.root": "user",
        "check.root.yes": "root: containers get every namespace and cgroup limits",
        "check.root.no": "not root: rootless containers arrive in a later release; use sudo for now",
        "check.cgroup": "cgroups",
        "check.cgroup.v2": "v2 (unified), can limit {limits}",
        "check.cgroup.v1": "v1 (legacy), can limit {limits}",
        "check.cgroup.nolimits": "{layout}, but no limit can be applied",
        "check.cgroup.none": "none usable: containers run without limits ({reason})",
        "check.overlay": "overlayfs",
        "check.overlay.yes": "available: read-only image layers, one writable layer each",
        "check.overlay.no": "not listed in /proc/filesystems yet (modprobe overlay loads it)",
        "limit.memory": "memory",
        "limit.pids": "processes",
        "limit.cpu": "CPU",
        "limit.swap": "swap",
        "list.sep": ", ",
        # try it
        "try.title": "Try it now",
        "try.intro": "Open a shell in a container of the built-in image lab "
                     "(offline, made from this machine's own programs):",
        "try.sudo": "You are not root: put sudo in front of it for now.",
        "try.inside": "Inside, type these and see what they say:",
        "look.ps": "bash is PID 1: the container has its own process tree (PID namespace)",
        "look.hostname": "a hostname of its own, the container's short id (UTS namespace)",
        "look.memory": "the memory limit its cgroup enforces: 1 GiB unless you pass --memory",
        "look.memory.none": "no limit here: this machine has no cgroup container-lab can use",
        "try.after": "exit leaves the shell, and --rm then removes the container.",
        # launcher notes (one line on stderr)
        "note.lessons_later": "container-lab: lessons arrive in a later release; "
                              "run container-lab with no options for the welcome screen.",
        "note.no_terminal": "container-lab: the course needs a terminal; "
                            "container-lab --help lists the engine's commands.",
    },
    "zh": {
        "subtitle": "欢迎 · 早期版本",
        "key.quit": "退出",
        "key.lang": "English",
        "key.help": "帮助",
        "help.title": "按键",
        "help.lang": "切换语言：中文 ↔ English",
        "help.quit": "退出",
        "help.help": "打开或关闭本帮助",
        "help.scroll": "滚动",
        "help.cli": "列出引擎的各个命令：run、ps、rm、images 等",
        "help.close": "按 Esc 关闭本帮助。",
        "about.title": "container-lab 是什么",
        "about.body": "一门中英双语的终端课程：运行真正的容器，让你看清容器到底是什么。"
                      "容器不是小型虚拟机，而是宿主机内核上的一组普通进程："
                      "由命名空间隔离，由控制组限制资源，并拥有自己的文件系统。",
        "about.preview": "早期版本：目前只有容器引擎和这个欢迎界面。"
                         "课程内容以及旁边的实时实验面板，将在后续版本中提供。",
        "machine.title": "本机情况",
        "check.root": "用户",
        "check.root.yes": "root：容器可以使用全部命名空间和控制组限制",
        "check.root.no": "非 root：rootless 容器将在后续版本中支持，目前请使用 sudo",
        "check.cgroup": "控制组",
        "check.cgroup.v2": "v2（统一层级），可以限制：{limits}",
        "check.cgroup.v1": "v1（传统层级），可以限制：{limits}",
        "check.cgroup.nolimits": "{layout}，但无法设置任何限制",
        "check.cgroup.none": "不可用，容器将不受资源限制（{reason}）",
        "check.overlay": "overlayfs",
        "check.overlay.yes": "可用：镜像层保持只读，每个容器写入自己的容器存储层",
        "check.overlay.no": "尚未出现在 /proc/filesystems 中（可用 modprobe overlay 加载）",
        "limit.memory": "内存",
        "limit.pids": "进程数",
        "limit.cpu": "CPU",
        "limit.swap": "交换分区",
        "list.sep": "、",
        "try.title": "动手试试",
        "try.intro": "用内置镜像 lab 启动一个容器，并在其中打开 shell。"
                     "lab 无需联网，由本机自带的程序组装而成：",
        "try.sudo": "你现在不是 root 用户：请暂时在命令前加上 sudo。",
        "try.inside": "在容器里输入下面的命令，看看输出了什么：",
        "look.ps": "bash 的 PID 是 1：容器有自己的进程树（PID 命名空间）",
        "look.hostname": "容器有自己的主机名，即容器的短 ID（UTS 命名空间）",
        "look.memory": "控制组为容器设定的内存上限：默认 1 GiB，可用 --memory 修改",
        "look.memory.none": "这里没有上限：本机没有 container-lab 可用的控制组",
        "try.after": "输入 exit 退出 shell，--rm 随即删除这个容器。",
        "note.lessons_later": "container-lab：课程将在后续版本中提供；"
                              "不带参数运行 container-lab 可打开欢迎界面。",
        "note.no_terminal": "container-lab：课程需要在终端中运行；"
                            "container-lab --help 可以列出引擎的各个命令。",
    },
}


def t(lang: str, key: str, /, **values: object) -> str:
    """The text for ``key`` in ``lang``, with ``{placeholders}`` filled from ``values``."""
    text = CATALOG[lang][key]
    return text.format(**values) if values else text


def other(lang: str) -> str:
    """The language that ``l`` switches to from ``lang``."""
    return "zh" if lang == "en" else "en"


def detect_language(environ: Mapping[str, str] | None = None) -> str:
    """``zh`` when the locale asks for Chinese, else ``en``.

    Reads LANGUAGE, LC_ALL, LC_MESSAGES and LANG in gettext's order; the first
    one set decides (LANGUAGE may list several, ``zh_CN:en``: its first counts).
    """
    env = os.environ if environ is None else environ
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var, "").strip()
        if value:
            first = value.split(":")[0].strip().lower()
            return "zh" if first.startswith("zh") else DEFAULT_LANG
    return DEFAULT_LANG
