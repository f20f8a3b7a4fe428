"""One language detector: the app, the CLI and ``run --explain`` agree."""

from __future__ import annotations

import pytest

from engine import explain
from engine.lang import detect
from tui.i18n import detect_language

from conftest import cl, needs_root


@pytest.mark.parametrize("env, lang", [
    ({"LANGUAGE": "zh_CN", "LANG": "en_US.UTF-8"}, "zh"),        # gettext's order: LANGUAGE first
    ({"LANGUAGE": "en", "LC_ALL": "zh_CN.UTF-8"}, "en"),
    ({"LC_ALL": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LANGUAGE": "zh_CN:en"}, "zh"),
    ({"LANGUAGE": " ", "LANG": "zh_CN.UTF-8"}, "zh"),
    ({}, "en"),
])
def test_the_app_and_explain_read_the_locale_alike(env, lang, monkeypatch):
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert detect() == detect_language() == explain.language() == lang
    assert explain.language("en") == "en"


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_run_explain_speaks_the_apps_language_from_the_cli():
    """LANGUAGE=zh_CN with LANG=en_US: the CLI's explained start is in Chinese,
    as the app would be (it used to read LANG first and come out in English)."""
    env = {var: "" for var in ("LC_ALL", "LC_MESSAGES")} | {"LANGUAGE": "zh_CN", "LANG": "en_US.UTF-8"}
    proc = cl("run", "--explain", "--rm", "lab", "true", env=env)
    assert proc.returncode == 0, proc.stderr
    titles = {lang: explain.stage_title({"id": "limits"}, lang) for lang in ("en", "zh")}
    assert titles["zh"] != titles["en"]
    assert titles["zh"] in proc.stdout and titles["en"] not in proc.stdout, proc.stdout
