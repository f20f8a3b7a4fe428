"""Which language a person asked for: one answer for the app, the CLI and ``run --explain``.

The locale variables are read in gettext's order -- ``LANGUAGE``, then
``LC_ALL``, ``LC_MESSAGES``, ``LANG`` -- and the first one set decides
(``LANGUAGE`` may list several, ``zh_CN:en``: its first counts). Anything
Chinese gives ``zh``; everything else ``en``.
"""

from __future__ import annotations

import os

LANGS = ("en", "zh")
DEFAULT = "en"
VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def detect(environ=None) -> str:
    """``zh`` when the locale asks for Chinese, else ``en``."""
    env = os.environ if environ is None else environ
    for var in VARIABLES:
        value = env.get(var, "").strip()
        if value:
            first = value.split(":")[0].strip().lower()
            return "zh" if first.startswith("zh") else DEFAULT
    return DEFAULT
