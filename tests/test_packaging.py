"""Guards on how container-lab is put together and shipped.

- The layers stay apart: ``engine`` and ``lessons`` never import Textual (nor
  Rich for the engine's CLI, nor pyroute2 until a network is set up), and
  ``tui.launcher`` stays light so ``container-lab run ...`` starts fast.
- The wheel holds exactly ``engine/``, ``tui/``, ``lessons/`` (with the course
  at ``lessons/content``) and its .dist-info, and declares the console script.
- ``lessons.content.content_dir()`` finds the course in a wheel and in a checkout.

Imports are checked in a fresh interpreter: this test process has already
imported Textual for the other tests.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from lessons.content import _find_content, content_dir

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "tui", "lessons")


def _modules_after(code: str) -> set[str]:
    """The top-level module names loaded in a fresh interpreter after running ``code``."""
    probe = code + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


# -- the layers stay apart --------------------------------------------------------

def test_engine_and_lessons_do_not_import_textual_or_pyroute2():
    loaded = _modules_after("import engine, engine.cli, engine.client, engine.supervisor, "
                            "engine.runtime, lessons, lessons.content")
    assert "textual" not in loaded
    assert "pyroute2" not in loaded


def test_engine_cli_does_not_import_rich():
    loaded = _modules_after("import engine, engine.cli")
    assert not {"textual", "rich", "pyroute2"} & loaded


def test_the_run_path_leaves_networks_registries_and_builds_to_the_supervisor():
    """What ``container-lab run --rm lab true`` imports (the fast path, the run
    verb, the client): no networking, DNS, registry or build code -- those are
    the supervisor's, or imported only by the verbs that need them."""
    loaded = _modules_after("import engine.cli, engine.cli.fastrun, engine.cli.run, engine.client, engine.spec\n"
                            "engine.cli.fastrun.parse_run(['--rm', 'lab', 'true'])")
    assert not {"textual", "rich", "pyroute2", "dns"} & loaded
    assert not [m for m in loaded if m.startswith(("engine.network", "engine.images.build", "engine.images.push",
                                                   "engine.images.registry"))]


def test_launcher_alone_does_not_import_textual():
    loaded = _modules_after("import tui.launcher")
    assert not {"textual", "rich", "pyroute2"} & loaded


def test_launcher_help_goes_to_the_engine_without_textual():
    loaded = _modules_after(
        "import contextlib, io\n"
        "from tui.launcher import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])")
    assert not {"textual", "rich"} & loaded


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["course", "--help"], ["--version"],
                                  ["course", "check"]])
def test_help_into_a_closed_pipe_is_no_error(args):
    """`container-lab --help | head -1`: the reader goes away; not a word on stderr, exit 0.
    Run as on a learner's machine: without PYTHONUNBUFFERED, stdout to a pipe is
    block-buffered, and what is left in it is written out only as Python exits."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
    proc = subprocess.Popen([sys.executable, "-m", "tui.launcher", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                      # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and err == "", err


def test_no_other_distribution_claims_our_package_names():
    owners = importlib.metadata.packages_distributions()
    for name in PACKAGES:
        assert set(owners.get(name, [])) <= {"container-lab"}, (name, owners[name])


# -- container-lab --help ------------------------------------------------------------

def test_container_lab_help_lists_the_verbs():
    """(How long it takes: bench/timings.py; what keeps it light: the import tests above.)"""
    proc = subprocess.run([sys.executable, "-m", "tui.launcher", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "run" in proc.stdout


# -- the wheel ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel, built once from this checkout.

    ``--no-isolation``: hatchling is already in the venv, and an isolated build
    would fetch it from the network.
    """
    out = tmp_path_factory.mktemp("wheel")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                           "--outdir", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"wheel built in {time.perf_counter() - start:.1f} s")
    (path,) = out.glob("container_lab-*.whl")
    with zipfile.ZipFile(path) as zf:
        yield zf


def _dist_info(wheel: zipfile.ZipFile) -> str:
    (name,) = {n.split("/")[0] for n in wheel.namelist() if n.split("/")[0].endswith(".dist-info")}
    return name


def test_wheel_holds_exactly_our_three_packages(wheel):
    top = {name.split("/")[0] for name in wheel.namelist()}
    assert top == {*PACKAGES, _dist_info(wheel)}
    assert not [n for n in wheel.namelist() if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_ships_the_course_and_the_styles(wheel):
    names = set(wheel.namelist())
    assert "lessons/content/README.md" in names
    assert "tui/app.tcss" in names          # CSS_PATH: without it the app cannot start
    assert "tui/launcher.py" in names and "lessons/content.py" in names


def test_wheel_ships_every_catalog_and_reads_it_installed(wheel, tmp_path):
    """Every gettext catalog (engine/catalog.py) is in the wheel, and read from
    there: the words come from the installed copy, not from this checkout."""
    catalogs = {str(p.relative_to(REPO)) for package in PACKAGES for p in (REPO / package).rglob("locale/*.po*")}
    assert len(catalogs) >= 8 and catalogs <= set(wheel.namelist())
    wheel.extractall(tmp_path / "site")
    code = ("import engine.explain, lessons.i18n, tui.i18n, tui.widgets.strings as w\n"
            "print(engine.explain.MESSAGES.locale_dir)\n"
            "print(engine.explain.stage_title({'id': 'rootfs'}, 'zh'), lessons.i18n.count('zh', 3, 'process'),\n"
            "      tui.i18n.t('zh', 'key.quit'), w.tr('tab.mounts', 'zh'), sep='|')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert proc.returncode == 0, proc.stderr
    where, words = proc.stdout.splitlines()
    assert where == str(tmp_path / "site" / "engine" / "locale")
    assert words == "挂载镜像层和容器存储层（overlayfs）|3 个进程|退出|挂载点"


def test_wheel_declares_the_console_script(wheel):
    entry_points = wheel.read(f"{_dist_info(wheel)}/entry_points.txt").decode()
    lines = [line.replace(" ", "") for line in entry_points.splitlines()]
    assert "[console_scripts]" in lines
    assert "container-lab=tui.launcher:main" in lines


def test_wheel_metadata(wheel):
    meta = email.parser.Parser().parsestr(wheel.read(f"{_dist_info(wheel)}/METADATA").decode())
    assert meta["Name"] == "container-lab"
    requires = " ".join(meta.get_all("Requires-Dist") or [])
    assert "textual" in requires


# -- finding content/ -------------------------------------------------------------------

def test_content_dir_in_this_checkout():
    assert content_dir() == REPO / "content"
    assert (content_dir() / "README.md").is_file()


def test_content_dir_prefers_the_installed_copy(tmp_path):
    pkg = tmp_path / "site-packages" / "lessons"
    (pkg / "content").mkdir(parents=True)
    assert _find_content(pkg) == pkg / "content"


def test_content_dir_falls_back_to_the_checkout(tmp_path):
    pkg = tmp_path / "lessons"
    pkg.mkdir()
    (tmp_path / "content").mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'container-lab'\n")
    assert _find_content(pkg) == tmp_path / "content"


def test_content_dir_ignores_a_stray_content_folder_next_to_site_packages(tmp_path):
    pkg = tmp_path / "site-packages" / "lessons"
    pkg.mkdir(parents=True)
    (tmp_path / "site-packages" / "content").mkdir()     # someone else's, not a checkout
    with pytest.raises(FileNotFoundError, match="course content not found"):
        _find_content(pkg)


def test_content_dir_says_where_it_looked(tmp_path):
    pkg = tmp_path / "lessons"
    pkg.mkdir()
    with pytest.raises(FileNotFoundError) as info:
        _find_content(pkg)
    assert str(pkg / "content") in str(info.value)
    assert str(tmp_path / "content") in str(info.value)


def test_the_run_path_stays_light():
    """`container-lab run` parses its flags and reaches the supervisor without
    dataclasses/inspect (~20 ms), pathlib (~8 ms), shutil (~6 ms) or typing (~4 ms)."""
    code = ("import sys, engine.cli, engine.client; "
            "engine.cli.build_parser('run').parse_args(['run', '-m', '64m', 'lab', 'true']); "
            "engine.client.Client(autostart=False).socket_path; "
            "print(' '.join(m for m in ('dataclasses', 'inspect', 'pathlib', 'shutil', 'typing', 'textual', 'pyroute2') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == ""


def test_the_run_command_line_reaches_the_client_with_nothing_heavy():
    """What `container-lab run --rm -m 64m lab true` imports before it talks to the
    supervisor: its flags read by engine.cli.fastrun, so no argparse (with gettext
    and locale), and none of the course's, the network's or the images' modules."""
    code = ("import sys, tui.launcher, engine.cli, engine.client\n"
            "from engine.cli.fastrun import parse_run\n"
            "args = parse_run(['--rm', '-m', '64m', 'lab', 'true'])\n"
            "assert args is not None and args.func.__name__ == 'cmd_run'\n"
            "engine.cli.config_from(args)\n"
            "engine.client.Client(autostart=False).socket_path\n"
            "heavy = ('argparse', 'gettext', 'locale', 'dataclasses', 'inspect', 'pathlib', 'shutil', 'typing',\n"
            "         'difflib', 'importlib.metadata', 'textual', 'rich', 'pyroute2', 'dns', 'engine.network',\n"
            "         'engine.images', 'engine.supervisor', 'engine.runtime', 'lessons', 'tui.app')\n"
            "print(' '.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == ""
