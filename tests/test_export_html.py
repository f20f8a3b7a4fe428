"""`container-lab course export --format html DIR`: the course as a static site,
opened page by page in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import deque
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from lessons.content import content_dir
from lessons.export_html.render import plain
from lessons.validate import check_course

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "course"


def course_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.launcher", "course", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's)")
    return path


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "course-site"
    proc = course_cli("export", "--format", "html", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("27 pages, languages: en, zh")
    return out


class Visit:
    """A page as the browser saw it: what it logged, its links and its ids."""

    def __init__(self, browser, path: Path):
        context = browser.new_context(viewport={"width": 390, "height": 844})     # a phone
        self.page = context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.problems.append(m.text))
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))
        self.page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))
        self.page.goto(path.as_uri())
        self.links = self.page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
        self.ids = set(self.page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
        self.context = context

    def close(self) -> None:
        self.context.close()


def _crawl(browser, site: Path) -> dict[Path, Visit]:
    """Every page reachable from index.html, each opened once."""
    seen: dict[Path, Visit] = {}
    todo = deque([site / "index.html"])
    while todo:
        path = todo.popleft()
        if path in seen:
            continue
        seen[path] = visit = Visit(browser, path)
        for url in visit.links:
            parts = urlsplit(url)
            if parts.scheme == "file":
                todo.append(Path(unquote(parts.path)))
    return seen


def test_every_page_opens_cleanly_and_every_link_resolves(browser, site):
    visits = _crawl(browser, site)
    try:
        pages = set(site.rglob("*.html"))
        assert set(visits) == pages and len(pages) == 27           # all reachable, none dangling
        for path, visit in visits.items():
            assert visit.problems == [], f"{path}: {visit.problems}"
            assert visit.page.eval_on_selector_all("script", "els => els.length") == 1
            for url in visit.links:
                parts = urlsplit(url)
                assert parts.scheme in ("file", "https", "http", "mailto"), url
                if parts.scheme != "file":
                    continue
                target = Path(unquote(parts.path))
                assert target.is_file() and target.is_relative_to(site), f"{path}: {url}"
                if parts.fragment:
                    assert parts.fragment in visits[target].ids, f"{path}: no #{parts.fragment} in {target}"
    finally:
        for visit in visits.values():
            visit.close()


def test_lessons_show_commands_checks_and_switch_language(browser, site):
    course, problems = check_course(content_dir())
    assert problems == []
    other = {"en": "zh", "zh": "en"}
    for lang in ("en", "zh"):
        for lesson in course.lessons:
            visit = Visit(browser, site / lang / f"{lesson.folder}.html")
            page = visit.page
            try:
                assert page.get_attribute("html", "lang").startswith(lang)
                number = int(lesson.folder.split("-")[0])
                title = page.inner_text("h1")
                assert plain(lesson.title[lang]) in " ".join(title.split())
                # Every command of every step, in a code block with a copy button beside it.
                blocks = page.eval_on_selector_all(".cmd pre code", "els => els.map(e => e.textContent)")
                wanted = [c.text for s in lesson.steps for c in s.commands]
                assert [b for b in blocks if b in wanted] == wanted
                assert page.locator(".cmd button.copy").count() == len(blocks)
                # What each check looks for, one line per check.
                assert page.locator("ul.checks li").count() == sum(len(s.checks) for s in lesson.steps)
                # The switch: the same lesson, in the other language.
                page.click("a.switch")
                page.wait_for_load_state()
                assert page.url.endswith(f"/{other[lang]}/{lesson.folder}.html")
                assert page.get_attribute("html", "lang").startswith(other[lang])
                assert plain(lesson.title[other[lang]]) in " ".join(page.inner_text("h1").split())
                assert str(number) in page.inner_text("h1")
                assert visit.problems == [], visit.problems
            finally:
                visit.close()


def test_the_copy_button_copies_the_command(browser, site):
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        for lang, done in (("en", "Copied"), ("zh", "已复制")):
            page.goto((site / lang / "10-cgroups.html").as_uri())
            button = page.locator("#step-limits .cmd button.copy").nth(1)
            button.click()
            page.wait_for_function("b => b.classList.contains('done')", arg=button.element_handle())
            assert button.inner_text() == done
            assert page.evaluate("navigator.clipboard.readText()") == "docker exec limited free -m"
        assert errors == []
    finally:
        context.close()


# -- an instructor's course is untrusted input ---------------------------------------

HOSTILE = '<script>alert("title")</script>'


@pytest.fixture
def hostile_course(tmp_path) -> Path:
    dst = tmp_path / "course"
    shutil.copytree(FIXTURE, dst)

    def edit(rel: str, old: str, new: str) -> None:
        path = dst / rel
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    edit("01-hello/en.md", "# Hello, container", f"# Hello {HOSTILE}")
    edit("01-hello/en.md", "This lesson runs your first ones.",
         'This lesson <img src=x onerror="alert(1)"> runs [your](javascript:alert(2)) first '
         '<iframe src="https://example.com/"></iframe> ones.')
    edit("course.toml", 'title.en = "A tiny container course"', 'title.en = "Tiny </title><script>alert(3)</script>"')
    edit("glossary.toml", 'term = "image"', 'term = "image\\" onmouseover=\\"alert(4)"')
    return dst


def test_html_in_a_lesson_is_shown_as_text(browser, hostile_course, tmp_path):
    out = tmp_path / "site"
    proc = course_cli("export", "--format", "html", "--course", str(hostile_course), str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lesson = (out / "en" / "01-hello.html").read_text(encoding="utf-8")
    assert HOSTILE not in lesson and "&lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt;" in lesson
    assert "<iframe" not in lesson and "<img" not in lesson and "javascript:" not in lesson.replace(
        "[your](javascript:alert(2))", "")
    for page in sorted(out.rglob("*.html")):
        visit = Visit(browser, page)
        try:
            assert visit.problems == [], f"{page}: {visit.problems}"      # no alert, no request
            assert visit.page.eval_on_selector_all("script", "els => els.length") == 1
            assert visit.page.eval_on_selector_all("img, iframe, [onmouseover], [onerror]", "els => els.length") == 0
        finally:
            visit.close()
    visit = Visit(browser, out / "en" / "01-hello.html")
    try:
        assert HOSTILE in visit.page.inner_text("h1")                      # shown, as text
        assert visit.page.title().startswith(f"Hello {HOSTILE} — Tiny </title>")
    finally:
        visit.close()


# -- errors: one line ----------------------------------------------------------------

def test_a_folder_that_is_not_empty_is_refused_unless_forced(tmp_path):
    out = tmp_path / "site"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = course_cli("export", "--format", "html", "--course", str(FIXTURE), str(out))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"container-lab course export: {out} is not empty: choose an empty or new "
                                   "directory, or add --force to replace the site in it")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    proc = course_cli("export", "--format", "html", "--force", "--course", str(FIXTURE), str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "notes.txt").read_text() == "mine"                           # not the site's: kept
    assert sorted(p.name for p in out.iterdir()) == ["en", "index.html", "notes.txt", "zh"]
    (out / "en" / "stale.html").write_text("old")
    assert course_cli("export", "--force", "--course", str(FIXTURE), str(out)).returncode == 0
    assert not (out / "en" / "stale.html").exists()                            # the site replaced whole
    (tmp_path / "file").write_text("")
    proc = course_cli("export", "--course", str(FIXTURE), str(tmp_path / "file"))
    assert proc.returncode == 1 and proc.stderr.strip().endswith("exists and is not a directory")


def test_a_bad_course_gets_the_validator_s_message(tmp_path):
    bad = tmp_path / "course"
    shutil.copytree(FIXTURE, bad)
    path = bad / "01-hello" / "lesson.toml"
    path.write_text(path.read_text().replace('kind = "container-ran"', 'kind = "container-flew"', 1))
    out = tmp_path / "site"
    proc = course_cli("export", "--format", "html", "--course", str(bad), str(out))
    assert proc.returncode == 2 and not out.exists()
    lines = proc.stderr.strip().splitlines()
    assert re.match(r"course/01-hello/lesson\.toml:\d+: step 'hello': unknown check kind 'container-flew'", lines[0]), lines
    assert lines[-1] == f"this course has mistakes; run: container-lab course check {bad}"
    proc = course_cli("export", "--format", "pdf", str(out))
    assert proc.returncode == 2 and "invalid choice: 'pdf'" in proc.stderr


def test_export_loads_no_textual(tmp_path):
    code = ("import sys\nfrom lessons.cli import main\n"
            f"assert main(['export', '--course', {str(FIXTURE)!r}, {str(tmp_path / 'site')!r}]) == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'pyroute2')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("[]"), proc.stdout + proc.stderr
