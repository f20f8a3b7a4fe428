"""The Layers tab in the app, against the real engine: a learner types
``docker run --name gone lab rm /etc/passwd`` on the lesson's command line,
opens the lab panel's Layers tab, and sees the deletion as a whiteout (D) in
the container's own layer, on top of the image's layer that still holds the file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tui.screens.lesson import LessonScreen
from tui.start import make_app
from tui.widgets import table as tm
from tui.widgets.strings import tr

from app_support import (
    course_containers,
    no_course_containers_left,  # noqa: F401 - autouse: nothing of a course is left
    quit_app,
    screen_text,
    wait_for,
)
from conftest import needs_root

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]

FIXTURE_COURSE = Path(__file__).resolve().parent / "fixtures" / "course"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_deleted_file_shows_as_a_whiteout_in_the_containers_layer(tmp_path, lang):
    from tui.widgets.lab import LabPanel
    from tui.widgets.rows import RowList

    async def scenario():
        app = make_app(lang, course=FIXTURE_COURSE, progress_dir=tmp_path / "progress", lesson="hello", mark=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 10, "the lesson")
            screen = app.screen
            await wait_for(pilot, lambda: "hello" in screen.cursors and isinstance(screen.lab_panel(), LabPanel),
                           60, "the step to be ready")
            panel = screen.lab_panel()
            await pilot.press("colon", *"docker run --name gone lab rm /etc/passwd", "enter")
            await wait_for(pilot, lambda: any(c["name"] == "gone" for c in course_containers()), 60, "gone")
            gone = next(c for c in course_containers() if c["name"] == "gone")
            await wait_for(pilot, lambda: panel.selected == gone["id"], 30, "the panel to show gone")
            panel.show_tab("layers")
            rows = panel.query_one("#lab-layers", RowList)
            deleted = f"D {tr('mnt.change.D', lang)}"

            def table() -> list[list[str]]:
                return [[tm.text_of(c).strip() for c in r.cells] for r in rows.table.rows]

            await wait_for(pilot, lambda: [deleted, "", "", "/etc/passwd"] in table(), 30, "the whiteout")
            keys = [r.key for r in rows.table.rows]
            assert keys.index("layer:writable") < keys.index("layer:writable:/etc/passwd") < keys.index("layer:0")
            assert table()[keys.index("layer:writable")][:1] == [tr("lyr.writable", lang)]
            await pilot.pause(0.2)
            text = screen_text(app)
            assert tr("tab.layers", lang) in text and "/etc/passwd" in text and tr("lyr.writable", lang) in text
            await quit_app(pilot, app)
    asyncio.run(scenario())
