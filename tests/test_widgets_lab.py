"""The lab panel in a small app: how it looks, what it does, and with real containers.

Snapshot tests (pytest-textual-snapshot) draw the panel from the recorded
scene (``tests/fixtures/snapshots/lesson.json``, no engine, ``live=False``)
at 80x24 and 120x40 in English and Chinese; after a deliberate change,
rerun with ``--snapshot-update`` and look at the report before keeping
them. Pilot tests check the behaviour; the last ones run the real engine.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Static, TabbedContent

from tui.widgets import table as tm
from tui.widgets.lab import LabPanel
from tui.widgets.lab_model import TABS
from tui.widgets.rows import RowList
from tui.widgets.sources import FixtureSource
from tui.widgets.strings import tr

from conftest import cl, needs_root

SCENE = Path(__file__).resolve().parent / "fixtures/snapshots/lesson.json"


class LabApp(App):
    """Just the panel, as the app will compose it."""

    CSS = "#lab.narrow { width: 44; }"

    def __init__(self, lang: str = "en", source=None, *, select: str | None = "web", tab: str = "processes",
                 live: bool = False, rate: float = 2.0, narrow: bool = False):
        super().__init__()
        self.lang, self.source, self.live, self.rate = lang, source, live, rate
        self.first, self.tab, self.narrow = select, tab, narrow

    def compose(self) -> ComposeResult:
        source = self.source if self.source is not None else (None if self.live else FixtureSource(SCENE))
        yield LabPanel(self.lang, source, live=self.live, rate=self.rate, id="lab",
                       classes="narrow" if self.narrow else None)

    def on_mount(self) -> None:
        panel = self.query_one(LabPanel)
        if self.first:
            panel.select(self.first)
        panel.show_tab(self.tab)


@pytest.fixture(autouse=True)
def _stable_screen(monkeypatch):
    """Colours on whatever the shell asks, and event times in UTC, so every host draws the same."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def run(coro):
    return asyncio.run(coro)


def selections(seen: list) -> list:
    """Each ContainerSelected once (the hook sees a message at every node it bubbles through)."""
    out = {}
    for m in seen:
        if isinstance(m, LabPanel.ContainerSelected):
            out.setdefault(id(m), m)
    return list(out.values())


def lines(widget) -> list[str]:
    """The text of a line-API widget as drawn now."""
    return [widget.render_line(y).text for y in range(widget.scrollable_content_region.height)]


async def until(pilot, predicate, timeout: float = 10.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await pilot.pause(step)
    return predicate()


# -- how it looks ---------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_processes(snap_compare, lang, size):
    assert snap_compare(LabApp(lang), terminal_size=size)


@pytest.mark.parametrize("lang, size, tab", [
    ("en", (120, 40), "namespaces"),
    ("zh", (80, 24), "namespaces"),
    ("en", (120, 40), "mounts"),
    ("en", (120, 40), "layers"),
    ("zh", (80, 24), "layers"),
    ("zh", (120, 40), "network"),
    ("en", (120, 40), "network"),
    ("en", (80, 24), "resources"),
    ("zh", (120, 40), "resources"),
    ("en", (120, 40), "transcript"),
    ("zh", (80, 24), "transcript"),
], ids=lambda v: v if isinstance(v, str) else f"{v[0]}x{v[1]}")
def test_snapshot_tabs(snap_compare, lang, size, tab):
    assert snap_compare(LabApp(lang, tab=tab), terminal_size=size)


def test_snapshot_narrow_panel_keeps_the_tabs_and_drops_columns(snap_compare):
    assert snap_compare(LabApp("en", narrow=True), terminal_size=(80, 24))


# -- what it does (recorded scene) ------------------------------------------------------------

def test_select_shows_that_container_and_says_so():
    async def scenario():
        seen = []
        app = LabApp("en", select="web")
        async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
            await pilot.pause()
            panel = app.query_one(LabPanel)
            rows = app.query_one("#lab-processes", RowList)
            assert panel.border_title == "Lab · web"
            assert any("sleep 300" in line for line in lines(rows))
            panel.select("db")
            await pilot.pause()
            assert panel.border_title == "Lab · db"
            assert [tm.text_of(c) for c in rows.table.rows[0].cells][-1] == "sleep 3000"
            assert [m.name for m in selections(seen)][-2:] == ["web", "db"]
            with pytest.raises(ValueError, match="unknown tab"):
                panel.show_tab("volumes")
    run(scenario())


def test_keys_on_the_container_list_choose_the_next_container():
    async def scenario():
        seen = []
        app = LabApp("en", select="web")
        async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
            await pilot.pause()
            containers = app.query_one("#lab-containers", RowList)
            containers.focus()
            order = [r.key for r in containers.table.rows]
            start = order.index(app.query_one(LabPanel).selected)
            await pilot.press("down")
            await pilot.pause()
            assert app.query_one(LabPanel).selected == order[start + 1]
            chosen = selections(seen)[-1]
            assert chosen.container_id == order[start + 1]
    run(scenario())


def test_a_click_on_a_tab_shows_it():
    async def scenario():
        app = LabApp("en")
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.click("#--content-tab-namespaces")
            await pilot.pause()
            assert app.query_one(LabPanel).tab == "namespaces"
            assert any("shared with db" in line for line in lines(app.query_one("#lab-namespaces", RowList)))
    run(scenario())


def test_the_layers_tab_stacks_the_writable_layer_on_the_images():
    async def scenario():
        app = LabApp("en", tab="layers")
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            table = app.query_one("#lab-layers", RowList).table
            texts = [[tm.text_of(c).strip() for c in r.cells] for r in table.rows]
            keys = [r.key for r in table.rows]
            top, base = keys.index("layer:writable"), keys.index("layer:0")
            assert top < base                                        # the writable layer on top
            assert texts[top][:3] == ["container layer", "6 B", "+1 ~3 -1"]
            assert ["D deleted", "", "", "/etc/os-release"] in texts[top:base]
            assert texts[base][0] == "layer 1" and texts[base][2] == "+209 ~0 -0"
            assert texts[base][3] == "container-lab: host binaries, assembled offline"
            assert texts[-1] == ["… and 204 more (container-lab image layers --files)"]
            assert str(app.query_one("#lab-note-layers", Static).content) == tr("lyr.note", "en")
            app.query_one(LabPanel).select("db")                      # recorded without layers
            await pilot.pause()
            assert app.query_one("#lab-layers", RowList).table.rows == ()
            assert str(app.query_one("#lab-note-layers", Static).content) == tr("lyr.none", "en")
    run(scenario())


def test_set_language_rewords_the_same_widgets_in_place():
    async def scenario():
        app = LabApp("en", tab="namespaces")
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            panel = app.query_one(LabPanel)
            rows = app.query_one("#lab-namespaces", RowList)
            assert "shared with db" in "\n".join(lines(rows))
            panel.set_language("zh")
            await pilot.pause()
            assert app.query_one("#lab-namespaces", RowList) is rows
            text = "\n".join(lines(rows))
            assert "与 db 共享" in text and "shared with db" not in text
            tabs = app.query_one(TabbedContent)
            assert tabs.get_tab("processes").label.plain == "进程"
            assert tabs.get_tab("transcript").label.plain == "启动过程"
            assert panel.border_title == "实验环境 · web"
            assert str(app.query_one("#lab-note-namespaces", Static).content).startswith("数字是命名空间")
            panel.set_language("en")
            await pilot.pause()
            assert tabs.get_tab("processes").label.plain == "Processes"
    run(scenario())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_narrow_panel_keeps_pids_and_command_and_every_tab_its_one_name(lang):
    """44 columns: the tabs stand in two rows, each with the name it has at any width
    (the lessons name them so), all of them on screen."""
    from app_support import screen_text

    async def scenario():
        app = LabApp(lang, narrow=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            header = lines(app.query_one("#lab-processes", RowList))[0]
            if lang == "en":
                assert header.split()[:3] == ["PID", "host", "PID"] and "command" in header
                assert "user" not in header and "memory" not in header
            tabs = app.query_one(TabbedContent)
            text = screen_text(app)
            for tab in TABS:
                assert tabs.get_tab(tab).label.plain == tr(f"tab.{tab}", lang)
                assert tr(f"tab.{tab}", lang) in text
    run(scenario())


@pytest.mark.parametrize("tab", ["processes", "namespaces", "network"])
def test_a_short_tables_note_is_right_under_its_rows(tab):
    async def scenario():
        app = LabApp("en", tab=tab)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            rows = app.query_one(f"#lab-{tab}", RowList)
            note = app.query_one(f"#lab-note-{tab}", Static)
            assert note.display and str(note.content)
            assert rows.region.height == len(rows.table.rows) + rows.header_lines   # every row, no more
            assert note.region.y == rows.region.bottom                              # the line under the last
    run(scenario())


@pytest.mark.parametrize("tab", ["mounts", "transcript"])
def test_a_long_table_scrolls_above_its_note_which_stays_in_view(tab):
    async def scenario():
        app = LabApp("en", tab=tab)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            panel = app.query_one(LabPanel)
            rows = app.query_one(f"#lab-{tab}", RowList)
            note = app.query_one(f"#lab-note-{tab}", Static)
            assert rows.virtual_size.height > rows.region.height and rows.max_scroll_y > 0
            assert note.display and note.region.y == rows.region.bottom
            assert note.region.bottom <= panel.content_region.bottom                 # inside the border
    run(scenario())


EMPTY_SCENE = {"containers": [], "snapshots": {}}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("width", [30, 60])
def test_the_empty_list_wraps_its_message_and_shows_it_whole(lang, width):
    async def scenario():
        app = LabApp(lang, FixtureSource(EMPTY_SCENE), select=None)
        async with app.run_test(size=(width + 4, 24)) as pilot:
            await pilot.pause()
            containers = app.query_one("#lab-containers", RowList)
            shown = [line.rstrip() for line in lines(containers)[containers.header_lines:]]
            assert all(shown)                       # (and not cut to its first line)
            assert "".join(shown).replace(" ", "") == tr("lab.empty", lang).replace(" ", "")
    run(scenario())


class CountingSource(FixtureSource):
    """The recorded scene, counting how often it is asked."""

    def __init__(self, path):
        super().__init__(path)
        self.calls = 0

    def containers(self):
        self.calls += 1
        return super().containers()


def test_live_refresh_runs_at_its_rate_and_pauses_while_hidden():
    async def scenario():
        source = CountingSource(SCENE)
        app = LabApp("en", source, live=True, rate=20)
        async with app.run_test(size=(80, 24)) as pilot:
            assert await until(pilot, lambda: source.calls >= 5, timeout=5)
            panel = app.query_one(LabPanel)
            panel.display = False
            await pilot.pause(0.3)
            hidden = source.calls
            await pilot.pause(1.0)
            assert source.calls <= hidden + 1               # at most one already under way
            panel.display = True
            assert await until(pilot, lambda: source.calls >= hidden + 5, timeout=5)
            assert panel.refreshes >= 5
    run(scenario())


def test_an_unreachable_engine_is_a_message_not_a_crash():
    class Down(FixtureSource):
        def containers(self):
            raise ConnectionRefusedError("no supervisor is listening on /run/x.sock")

    async def scenario():
        app = LabApp("en", Down(SCENE), select=None)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            status = app.query_one("#lab-status", Static)
            assert status.display
            assert str(status.content) == tr("lab.unreachable", "en",
                                             error="no supervisor is listening on /run/x.sock")
    run(scenario())


def test_new_processes_and_changed_namespaces_are_highlighted():
    async def scenario():
        app = LabApp("en", tab="namespaces")
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            ns = app.query_one("#lab-namespaces", RowList).table
            assert {r.key for r in ns.rows if r.style == "changed"} == {"net", "ipc"}
            app.query_one(LabPanel).show_tab("processes")
            await pilot.pause()
            procs = app.query_one("#lab-processes", RowList).table
            new = [tm.text_of(r.cells[-1]) for r in procs.rows if r.style == "new"]
            assert any(cmd.startswith("sleep 300") for cmd in new)
            assert not any(cmd.startswith("sleep 1000") for cmd in new)
    run(scenario())


# -- with the real engine -----------------------------------------------------------------------

def _children(host_pid: int) -> list[int]:
    with open(f"/proc/{host_pid}/task/{host_pid}/children") as f:
        return sorted(int(p) for p in f.read().split())


@needs_root
def test_a_real_container_shows_up_with_its_process_tree(lab_image):
    from engine.client import Client

    name = "clt-widget-lab-ps"
    cl("rm", "-f", name)
    cl("run", "-d", "--name", name, lab_image, "sh", "-c", "sleep 100 & sleep 200 & wait", check=True)
    try:
        host_pid = Client().inspect(name)["pid"]

        async def scenario():
            app = LabApp("en", live=True, select=name)
            async with app.run_test(size=(120, 40)) as pilot:
                panel = app.query_one(LabPanel)
                rows = app.query_one("#lab-processes", RowList)

                def shown():
                    return {tm.text_of(r.cells[1]): [tm.text_of(c) for c in r.cells]
                            for r in rows.table.rows}

                assert await until(pilot, lambda: len(shown()) == 3, timeout=10), shown()
                assert panel.border_title == f"Lab · {name}"
                table = shown()
                assert table[str(host_pid)][0] == "1" and table[str(host_pid)][-1].startswith("sh -c")
                kids = _children(host_pid)
                assert len(kids) == 2
                assert {table[str(k)][-1] for k in kids} == {"├─ sleep 100", "└─ sleep 200"}
                assert {table[str(k)][0] for k in kids} == {"2", "3"}
                # on screen too (the list's height follows its rows: laid out at the next refresh)
                assert await until(pilot, lambda: any(str(host_pid) in line for line in lines(rows)), timeout=5)

                cl("exec", "-d", name, "sleep", "300", check=True)
                assert await until(pilot, lambda: any("sleep 300" in r[-1] for r in shown().values()),
                                   timeout=10), shown()
                host_exec, row = next((int(k), r) for k, r in shown().items() if "sleep 300" in r[-1])
                with open(f"/proc/{host_exec}/cmdline", "rb") as f:
                    assert f.read().split(b"\0")[:2] == [b"sleep", b"300"]
                assert row[0] == "4"
        run(scenario())
    finally:
        cl("rm", "-f", name)
    assert name not in cl("ps", "-a").stdout


@needs_root
def test_a_real_containers_whiteout_shows_in_its_layer(lab_image):
    """`docker run --name x lab rm /etc/passwd`: the Layers tab shows D /etc/passwd in
    the container's own layer, on top of the image's, which still has the file."""
    name = "clt-widget-lab-layers"
    cl("rm", "-f", name)
    cl("run", "--name", name, lab_image, "rm", "/etc/passwd", check=True)
    try:
        async def scenario():
            app = LabApp("en", live=True, select=name, tab="layers")
            async with app.run_test(size=(120, 40)) as pilot:
                rows = app.query_one("#lab-layers", RowList)

                def texts():
                    return [[tm.text_of(c).strip() for c in r.cells] for r in rows.table.rows]
                assert await until(pilot, lambda: ["D deleted", "", "", "/etc/passwd"] in texts(), timeout=10)
                keys = [r.key for r in rows.table.rows]
                assert keys.index("layer:writable") < keys.index("layer:writable:/etc/passwd") < keys.index("layer:0")
                assert texts()[keys.index("layer:writable")][2] == "+0 ~1 -1"
                assert len(app.query_one(LabPanel).source._stacks) == 1      # the image's part, read once
                assert await until(pilot, lambda: any("/etc/passwd" in line for line in lines(rows)), timeout=5)
        run(scenario())
    finally:
        cl("rm", "-f", name)


@needs_root
def test_a_real_oom_kill_arrives_as_an_event(lab_image):
    name = "clt-widget-lab-oom"
    cl("rm", "-f", name)
    cl("run", "-d", "--name", name, "-m", "32m", lab_image, "sleep", "100", check=True)
    try:
        async def scenario():
            app = LabApp("en", live=True, select=name, tab="resources")
            async with app.run_test(size=(120, 40)) as pilot:
                rows = app.query_one("#lab-resources", RowList)
                assert await until(pilot, lambda: any(r.key == "memory" for r in rows.table.rows))
                gauge = next(r for r in rows.table.rows if r.key == "memory")
                assert tm.text_of(gauge.cells[2]).endswith("of 32.0 MiB")
                cl("exec", name, "sh", "-c", "head -c 100000000 /dev/zero | tail > /dev/null")

                def oom_rows():
                    return [r for r in rows.table.rows if r.key and r.key.startswith("ev:")
                            and r.cells[0].style == "error"]
                assert await until(pilot, lambda: oom_rows(), timeout=15)
                assert "out of memory" in oom_rows()[0].cells[0].text
        run(scenario())
    finally:
        cl("rm", "-f", name)
