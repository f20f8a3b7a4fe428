"""The lab panel's pure parts: strings, tables from snapshots, fitting columns.

Everything here runs without Textual and without an engine, on the scene
recorded from real containers in ``tests/fixtures/snapshots/lesson.json``
(see ``tests/test_widgets_scene.py``): ``web`` (a lesson container with
limits, a process tree, an exec, layer changes, an OOM kill and a process
limit hit), ``db`` sharing web's network and IPC namespaces, ``mine`` (the
learner's own) and ``hello`` (exited).
"""

from __future__ import annotations

import json
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

from tui.widgets import lab_model as m
from tui.widgets import table as tm
from tui.widgets.sources import FixtureSource, LabSource, fetch
from tui.widgets.strings import LANGS, STRINGS, catalog, counted, tr

REPO = Path(__file__).resolve().parent.parent
SCENE = REPO / "tests/fixtures/snapshots/lesson.json"


@pytest.fixture(scope="module")
def scene() -> FixtureSource:
    return FixtureSource(SCENE)


@pytest.fixture(scope="module")
def web(scene) -> dict:
    return scene.snapshot("web")


def texts(row: tm.Row) -> list[str]:
    return [tm.text_of(c) for c in row.cells]


def row_by_key(table: tm.Table, key: str) -> tm.Row:
    return next(r for r in table.rows if r.key == key)


# -- the strings ---------------------------------------------------------------------

def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(STRINGS))
def test_every_string_has_both_languages_with_the_same_placeholders(key):
    entry = STRINGS[key]
    assert set(entry) == set(LANGS), key
    for lang in LANGS:
        assert entry[lang].strip(), f"{lang}:{key} is empty"
    assert _placeholders(entry["zh"]) == _placeholders(entry["en"]), key


_HAN = r"[\u3400-\u4dbf\u4e00-\u9fff]"
_LATIN = r"[A-Za-z0-9]"


@pytest.mark.parametrize("key", sorted(STRINGS))
def test_chinese_strings_put_a_space_between_chinese_and_latin(key):
    text = STRINGS[key]["zh"]
    assert not re.findall(f"{_HAN}{_LATIN}|{_LATIN}{_HAN}", text), f"zh:{key}: {text!r}"


def test_chinese_uses_the_established_terms():
    zh = " ".join(catalog("zh").values())
    for term in ("进程", "命名空间", "挂载点", "宿主机", "镜像层", "容器存储层", "控制组", "容器", "隔离", "共享"):
        assert term in zh, term


def test_catalog_is_flat_per_language_and_tr_fills_fields():
    assert catalog("en")["tab.processes"] == "Processes"
    assert catalog("zh")["tab.processes"] == "进程"
    assert tr("ns.shared_with", "zh", names="db") == "与 db 共享"
    assert tr("tab.network", "fr") == "Network"          # an unknown language falls back to English


def test_pure_modules_do_not_import_textual():
    probe = ("import tui.widgets.lab_model, tui.widgets.table, tui.widgets.strings, tui.widgets.sources, tui.widgets.vt, sys\n"
             "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "textual" not in proc.stdout.split()


# -- fitting columns -------------------------------------------------------------------

def test_fit_columns_drops_the_highest_priority_first_and_gives_the_flex_column_the_rest():
    cols = (tm.Column("a", 5), tm.Column("b", 8), tm.Column("c", 6, priority=3), tm.Column("d", 4, priority=1),
            tm.Column("cmd", 30, flex=True, min_width=10))
    wide = tm.fit_columns(cols, 100)
    assert [i for i, _ in wide] == [0, 1, 2, 3, 4]
    assert sum(w for _, w in wide) + 4 == 100                 # the flex column took what was left
    narrow = tm.fit_columns(cols, 32)
    assert [i for i, _ in narrow] == [0, 1, 3, 4]             # c (priority 3) went first
    assert sum(w for _, w in narrow) + 3 <= 32
    tiny = tm.fit_columns(cols, 20)
    assert [i for i, _ in tiny][:2] == [0, 1]                 # priority 0 stays, cut if need be
    assert sum(w for _, w in tiny) + len(tiny) - 1 <= 20


# -- containers --------------------------------------------------------------------------

def test_containers_lesson_first_running_first_with_their_roles(scene):
    containers = scene.containers()
    table = m.container_table(containers, "en")
    names = [texts(r)[0][2:] for r in table.rows]
    assert names[-1] == "hello"                               # the learner's, exited: last
    assert set(names[:2]) == {"web", "db"}                    # the lesson's first
    web = next(r for r in table.rows if texts(r)[0] == "● web")
    assert texts(web)[1] == "lesson 09 · share-net" and texts(web)[2] == "running"
    hello = next(r for r in table.rows if texts(r)[0] == "○ hello")
    assert texts(hello)[1] == "yours" and texts(hello)[2] == "exited (0)" and hello.style == "dim"
    zh = m.container_table(containers, "zh")
    assert {texts(r)[1] for r in zh.rows} == {"课程 09 · share-net", "你的"}


def test_find_and_default_selection(scene):
    containers = scene.containers()
    web = m.find_container(containers, "web")
    assert m.find_container(containers, web["id"][:10]) is web
    assert m.find_container(containers, "nope") is None
    chosen = m.find_container(containers, m.default_selection(containers))
    assert chosen["status"] == "running" and m.is_lesson_container(chosen)


# -- processes ------------------------------------------------------------------------------

def test_process_tree_puts_children_under_their_parent_and_exec_last(web):
    tree = m.process_tree(web["processes"])
    pids = [p["pid"] for _, p in tree]
    assert pids[0] == 1
    by_pid = {p["pid"]: (prefix, p) for prefix, p in tree}
    # sh -c '... & (while ...) & wait': PID 1 has three children, the subshell one of its own.
    kids = [p for p in web["processes"] if p["ppid"] == 1]
    assert len(kids) == 3
    assert [by_pid[k["pid"]][0] for k in kids] == ["├─ ", "├─ ", "└─ "]
    grandchild = next(p for p in web["processes"] if p["ppid"] == kids[-1]["pid"])
    assert by_pid[grandchild["pid"]][0] == "   └─ "
    assert pids.index(grandchild["pid"]) == pids.index(kids[-1]["pid"]) + 1
    exec_ = next(p for p in web["processes"] if p["cmd"] == ["sleep", "300"])
    assert exec_["ppid"] == 0 and by_pid[exec_["pid"]][0] == ""        # a root of its own
    assert pids.index(exec_["pid"]) > pids.index(grandchild["pid"])


def test_process_tree_survives_a_parent_cycle():
    procs = [{"pid": 2, "ppid": 3}, {"pid": 3, "ppid": 2}, {"pid": 1, "ppid": 0}]
    assert sorted(p["pid"] for _, p in m.process_tree(procs)) == [1, 2, 3]


@pytest.mark.parametrize("lang", LANGS)
def test_process_table_shows_container_pid_beside_host_pid(web, lang):
    table = m.process_table(web, lang, new={web["processes"][-1]["host_pid"]})
    assert [c.label for c in table.columns][:2] == ["PID", tr("col.host_pid", lang)]
    for p in web["processes"]:
        row = row_by_key(table, str(p["host_pid"]))
        assert texts(row)[:3] == [str(p["pid"]), str(p["host_pid"]), "root"]
    assert row_by_key(table, str(web["processes"][-1]["host_pid"])).style == "new"
    assert str(web["pid"]) in table.note
    exec_row = next(r for r in table.rows if "sleep 300" in texts(r)[-1])
    assert tr("proc.exec", lang) in texts(exec_row)[-1]


@pytest.mark.parametrize("lang", LANGS)
def test_the_process_note_speaks_of_the_rows_shown_when_pid_1_is_not_one_of_them(lang):
    """docker run --pid container:anchor: the container's one process is PID 3 of anchor's namespace."""
    snap = {"pid": 17936, "processes": [{"pid": 3, "host_pid": 17936, "ppid": 0, "uid": 0, "uid_host": 0,
                                         "state": "S", "cmd": ["sleep", "600"]}]}
    table = m.process_table(snap, lang)
    assert texts(table.rows[0])[:2] == ["3", "17936"]
    assert tr("proc.exec", lang) not in texts(table.rows[0])[-1]        # its own command, not an exec
    assert tr("proc.pid1", lang, host_pid=17936) not in table.note
    assert tr("proc.pidn", lang, pid=3, host_pid=17936) in table.note and tr("proc.no_pid1", lang) in table.note


def test_new_processes_are_those_not_seen_before(scene):
    early = scene.history("web")[0]
    now = scene.snapshot("web")
    new = m.new_processes(early, now)
    cmds = {tuple(p["cmd"]) for p in now["processes"] if p["host_pid"] in new}
    assert ("sleep", "300") in cmds
    assert ("sleep", "1000") not in cmds
    assert m.new_processes(early, {**now, "id": "other"}) == set()      # another container: nothing new


def test_a_user_namespace_shows_the_host_uid_too():
    snap = {"pid": 900, "processes": [{"pid": 1, "host_pid": 900, "ppid": 0, "uid": 0, "uid_host": 100000,
                                       "state": "S", "cmd": ["sh"]}]}
    table = m.process_table(snap, "en")
    assert tr("col.host_user", "en") in [c.label for c in table.columns]
    assert texts(table.rows[0])[2:4] == ["root", "100000"]
    assert "100000" in table.note and table.note.startswith("One process.")


# -- namespaces -----------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGS)
def test_namespaces_isolated_or_shared(web, lang):
    table = m.namespace_table(web, lang)
    status = {r.key: texts(r)[3] for r in table.rows}
    assert status["pid"] == status["mnt"] == status["uts"] == tr("ns.isolated", lang)
    assert status["net"] == status["ipc"] == tr("ns.shared_with", lang, names="db")
    assert status["user"] == tr("ns.shared_host", lang)
    pid = row_by_key(table, "pid")
    assert texts(pid)[1] == str(web["namespaces"]["pid"]["inode"]) != texts(pid)[2]
    assert row_by_key(table, "user").cells[1].style == "shared"
    assert pid.cells[1].style == "isolated"


def test_namespace_changes_when_db_joins_web(scene):
    early, now = scene.history("web")[0], scene.snapshot("web")
    changed = m.namespace_changes(early, now)
    assert changed == {"net", "ipc"}
    table = m.namespace_table(now, "zh", changed=changed)
    assert row_by_key(table, "net").style == "changed"
    assert "有变化" in texts(row_by_key(table, "net"))[3]
    assert row_by_key(table, "pid").style == ""
    assert m.namespace_changes(early, {**now, "id": "x"}) == set()


# -- mounts ---------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGS)
def test_mounts_show_image_layers_then_the_writable_layer_and_its_changes(scene, web, lang):
    table = m.mount_table(web, scene.diff("web"), lang)
    sections = [texts(r)[0] for r in table.rows if r.style == "section"]
    assert sections[:3] == [tr("mnt.layers", lang), tr("mnt.upper", lang), tr("mnt.changes", lang)]
    overlay = m.overlay_of(web)
    layer = row_by_key(table, "layer:0")
    assert texts(layer)[1] == overlay["lower"][0].rsplit("/", 1)[-1][:12]
    assert texts(row_by_key(table, "upper"))[3] == overlay["upper"]
    changes = {texts(r)[1]: r.cells[0].style for r in table.rows if r.key and r.key.startswith("diff:")}
    assert changes == {"/etc": "changed-file", "/etc/os-release": "deleted", "/etc/passwd": "changed-file",
                       "/tmp": "changed-file", "/tmp/hello": "added"}
    root = next(r for r in table.rows if r.key and r.key.startswith("mount:") and texts(r)[1] == "/")
    assert texts(root)[0] == "overlay"


def test_mounts_without_a_diff_leave_the_changes_out(web):
    table = m.mount_table(web, None, "en")
    assert tr("mnt.changes", "en") not in [texts(r)[0] for r in table.rows]
    empty = m.mount_table(web, [], "en")
    assert any(tr("mnt.no_changes", "en") in texts(r)[0] for r in empty.rows)


# -- network -------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGS)
def test_network_lists_interfaces_addresses_and_routes(web, lang):
    """web, recorded on a user network: lo, and eth0 with the address its network gave it."""
    table = m.network_table(web, lang)
    lo = row_by_key(table, "if:1")
    assert texts(lo)[:3] == ["lo", "loopback", tr("if.up", lang)]
    assert texts(row_by_key(table, "addr:127.0.0.1/8"))[2] == "127.0.0.1/8"
    plugged = web["settings"]["Networks"]["lesson-net"]
    eth0 = next(r for r in table.rows if r.key and r.key.startswith("if:") and texts(r)[0] == "eth0")
    assert texts(eth0)[1] == "veth" and texts(eth0)[4] == plugged["MacAddress"]
    assert texts(row_by_key(table, f"addr:{plugged['IPAddress']}/24"))[0] == "eth0"
    assert texts(row_by_key(table, "route:default:eth0:None"))[3] == plugged["Gateway"]
    assert table.note == tr("net.note.bridge", lang)
    loopback_only = {**web, "settings": None, "network": {**web["network"], "routes": [],
                     "interfaces": [i for i in web["network"]["interfaces"] if i["name"] == "lo"]}}
    table = m.network_table(loopback_only, lang)
    assert any(tr("net.no_routes", lang) in texts(r)[0] for r in table.rows)
    assert table.note == tr("net.note.none", lang)


def test_network_missing_none_host_and_routes(web):
    assert m.network_table({k: v for k, v in web.items() if k != "network"}, "en").rows == ()
    gone = m.network_table({**web, "network": None, "network_error": "process 7 has exited"}, "en")
    assert gone.rows == () and "process 7 has exited" in gone.note
    host = m.network_table({**web, "network": {**web["network"], "entered": False}}, "en")
    assert host.note == tr("net.note.host", "en")
    routed = {**web["network"], "routes": [{"family": "inet", "dst": "default", "gateway": "10.0.0.1",
                                            "dev": "eth0", "scope": "global", "metric": 0}]}
    table = m.network_table({**web, "network": routed}, "en")
    assert texts(row_by_key(table, "route:default:eth0:0"))[:4] == ["eth0", "inet", "default", "10.0.0.1"]


BRIDGED = {"IPAddress": "10.213.0.2", "IPPrefixLen": 24, "Gateway": "10.213.0.1", "MacAddress": "02:42:0a:d5:00:02",
           "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": None},
           "Networks": {"lab-net": {"NetworkID": "ab" * 32, "IPAddress": "10.213.0.2", "IPPrefixLen": 24,
                                    "Gateway": "10.213.0.1", "MacAddress": "02:42:0a:d5:00:02", "Aliases": None,
                                    "InterfaceName": "eth0", "HostInterface": "vcl1a2b3c4d", "Bridge": "cl-abababab",
                                    "Peers": [{"Name": "client", "IPAddress": "10.213.0.3"}]}},
           "NetworkMode": "lab-net"}


@pytest.mark.parametrize("lang", LANGS)
def test_network_shows_the_veth_pair_the_bridge_the_ports_and_the_peers(web, lang):
    table = m.network_table({**web, "settings": BRIDGED}, lang)
    assert texts(row_by_key(table, "plug:lab-net")) == ["lab-net", "eth0", "10.213.0.2/24", "10.213.0.1",
                                                        "vcl1a2b3c4d", "cl-abababab"]
    assert texts(row_by_key(table, "port:0.0.0.0:8080"))[:3] == ["0.0.0.0:8080", "→", "80/tcp"]
    assert texts(row_by_key(table, "peer:lab-net:client"))[2] == "10.213.0.3"
    sections = [texts(r)[0] for r in table.rows if r.style == "section"]
    assert sections[:3] == [tr("net.plugged", lang), tr("net.ports", lang), tr("net.peers", lang, network="lab-net")]
    assert table.note == tr("net.note.bridge", lang)
    alone = {**BRIDGED, "Ports": {}, "Networks": {"lab-net": {**BRIDGED["Networks"]["lab-net"], "Peers": []}}}
    table = m.network_table({**web, "settings": alone}, lang)
    assert not any(r.key and r.key.startswith("port:") for r in table.rows)
    assert any(tr("net.no_peers", lang) in texts(r)[0] for r in table.rows)
    # not on a network of ours (--network none, an older engine): no such section
    assert not any(r.key and r.key.startswith("plug:") for r in m.network_table({**web, "settings": None}, lang).rows)


# -- resources --------------------------------------------------------------------------------

def test_gauges_against_the_limits(scene):
    history = scene.history("web") + [scene.snapshot("web")]
    mem, pids, cpu = m.gauges(history, "en", cpu_limit=0.5)
    res = history[-1]["resources"]
    assert (mem.value, mem.limit) == (res["memory_current"], 64 * 1024 * 1024)
    assert mem.text == f"{m.human_bytes(res['memory_current'])} of 64.0 MiB"
    assert (pids.value, pids.limit) == (res["pids_current"], 20)
    assert pids.fraction == pytest.approx(res["pids_current"] / 20)
    assert len(mem.history) == len(history) and len(cpu.history) == len(history) - 1
    assert max(cpu.history) > 0.1                               # the busy loop shows
    assert cpu.text.endswith("of 0.50 cores")
    full = m.Gauge("pids", "p", 20, 20, "")
    assert (full.level, m.Gauge("m", "m", 85, 100, "").level, mem.level) == ("full", "high", "ok")


@pytest.mark.parametrize("lang", LANGS)
def test_oom_and_limit_hits_stand_out_among_the_events(scene, lang):
    web_id = scene.snapshot("web")["id"]
    events = [e for e in scene.scene["events"] if e["id"] == web_id]
    table = m.resource_table(scene.history("web") + [scene.snapshot("web")], events, lang)
    rows = {r.cells[0].text.split("  ", 1)[1]: r.cells[0].style for r in table.rows
            if r.key and r.key.startswith("ev:")}
    oom = next(e for e in events if e["kind"] == "oom")
    assert rows[counted("ev.oom", lang, oom["count"])] == "error"
    hit = next(e for e in events if e["kind"] == "pids-limit-hit")
    assert rows[counted("ev.pids-limit-hit", lang, hit["count"])] == "warn"
    keys = [r.key for r in table.rows if r.key and r.key.startswith("ev:")]
    assert keys == sorted(keys, key=lambda k: -int(k[3:]))          # the newest first
    assert [r.key for r in table.rows[:2]] == ["memory", "memory:history"]


# -- what happened ------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGS)
def test_transcript_stage_by_stage_wrapped_to_the_width(scene, lang):
    from engine import explain

    stages = scene.transcript("web")
    table = m.transcript_table(stages, lang, 60)
    titles = [texts(r)[0] for r in table.rows if r.style == "title" and not texts(r)[0].startswith(" ")]
    assert len(titles) == len(stages)
    assert titles[0].startswith("1. " + explain.stage_title(stages[0], lang)[:10])
    assert any(r.style == "shell" and texts(r)[0].lstrip().startswith("$ mkdir /sys/fs/cgroup")
               for r in table.rows)
    assert any(r.style == "kernel" and "pivot_root(" in texts(r)[0] for r in table.rows)
    prose = [texts(r)[0] for r in table.rows if r.style == "text"]
    assert all(cell_len(t) <= 60 for t in prose)
    assert str(len(stages)) in table.note
    assert not any(re.search(r"[0-9a-f]{64}", texts(r)[0]) for r in table.rows)   # ids cut to 12


# -- fetch: one refresh, from any source ----------------------------------------------------------

def test_fetch_selects_falls_back_and_asks_only_for_what_the_tab_needs(scene):
    data = fetch(scene, "db", tab="processes")
    assert data.snapshot["name"] == "db" and data.diff is None and data.transcript
    assert data.transcript_key[0] == data.selected
    again = fetch(scene, "db", tab="mounts", have_transcript=data.transcript_key)
    assert again.transcript is None and again.diff == []
    fallback = fetch(scene, "not-yet", fallback=scene.snapshot("web")["id"], tab="processes")
    assert fallback.snapshot["name"] == "web"
    stopped = fetch(scene, "hello", tab="processes")
    assert stopped.snapshot["status"] == "exited" and stopped.snapshot["processes"] == []


def test_a_half_built_container_is_shown_as_built_so_far(scene):
    """run --explain, paused between two stages: status starting, its PID 1 there to read."""
    web = next(c for c in scene.containers() if c["name"] == "web")
    half = {**web, "id": "f" * 64, "name": "half", "status": "starting"}

    class Starting:
        asked: list[str] = []
        lesson = None

        def containers(self):
            return [half]

        def snapshot(self, ref):
            self.asked.append(ref)
            return {**scene.snapshot("web"), "id": half["id"], "name": "half", "status": "starting"}

        def transcript(self, ref):
            return []

        def config(self, ref):
            return {}

        def history(self, ref):
            return []

        def diff(self, ref):
            return []

        def layers(self, ref):
            return []

        def subscribe(self, after=None):
            return FixtureSource({"containers": []}).subscribe()

    source = Starting()
    assert isinstance(source, LabSource)
    data = fetch(source, "half", tab="namespaces")
    assert source.asked == [half["id"]] and data.snapshot["processes"]
    row = m.container_table([half], "zh").rows[0]
    assert texts(row)[0] == "◐ half" and texts(row)[2] == "启动中" and row.style == ""
    assert texts(m.container_table([half], "en").rows[0])[2] == "starting"


def test_the_engine_and_a_recorded_scene_are_both_lab_sources(scene):
    from tui.widgets.sources import EngineSource

    assert isinstance(scene, LabSource) and isinstance(EngineSource(client=object()), LabSource)
    assert EngineSource(client=object()).history("web") == []      # the live engine: sparklines start now


def test_fetch_reports_an_unreachable_engine_instead_of_raising():
    class Down:
        def containers(self):
            raise ConnectionRefusedError("no supervisor is listening")

    data = fetch(Down(), None, tab="processes")
    assert data.error == "no supervisor is listening" and data.containers == []


def test_the_scene_is_real_engine_data():
    scene = json.loads(SCENE.read_text())
    web = next(c for c in scene["containers"] if c["name"] == "web")
    snap = scene["snapshots"][web["id"]][-1]
    assert snap["version"] == 1 and snap["processes"][0]["pid"] == 1
    assert snap["processes"][0]["host_pid"] == snap["pid"] != 1
    assert "/tmp/clw-" not in SCENE.read_text()                   # no private test paths


@pytest.mark.parametrize("width", range(24, 81, 7))
def test_a_wrapped_command_is_its_text_in_order_with_no_space_added_and_paths_broken_at_slashes(width):
    text = 'write("/sys/fs/cgroup/container-lab/0123456789ab/memory.limit_in_bytes", "67108864") ' \
           'echo $$ > /sys/fs/cgroup/pids/container-lab/0123456789ab/cgroup.procs'
    rows = m._wrapped("   ⚙ ", text, width, "kernel")
    rest = text
    for n, row in enumerate(rows):
        line = texts(row)[0]
        assert cell_len(line) <= width
        piece = line[len("   ⚙ "):] if n == 0 else line.lstrip(" ")
        rest = rest.lstrip(" ")
        assert rest.startswith(piece), (piece, rest)          # what the text says next, nothing inserted
        rest = rest[len(piece):]
    assert rest == ""
    for row in rows[1:]:                                       # a path breaks before one of its slashes
        line = texts(row)[0].lstrip(" ")
        assert not line.startswith(("es", "cs", "ry")), [texts(r)[0] for r in rows]


@pytest.mark.parametrize("lang", LANGS)
def test_the_mounts_headings_wrap_to_the_panel_and_the_writable_layer_has_a_label(scene, lang):
    snap = scene.snapshot("web")
    table = m.mount_table(snap, scene.diff("web"), lang, 38)
    headings = [texts(r)[0] for r in table.rows if r.style == "section"]
    assert all(cell_len(h) <= 38 for h in headings)
    joined = "".join(h.replace(" ", "") for h in headings)
    for key in ("mnt.layers", "mnt.upper", "mnt.changes", "mnt.table"):
        assert tr(key, lang).replace(" ", "") in joined                 # whole, in order of the words
    upper = next(r for r in table.rows if r.key == "upper")
    assert texts(upper)[:2] == [tr("mnt.writable", lang), "upper"]
