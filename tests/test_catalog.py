"""The gettext catalogs (engine/catalog.py): every package's words in one format, read strictly, in parity.

- Every ``.po``/``.pot`` in the tree reads without a fault (and ``msgfmt --check`` agrees, where
  gettext's tools are installed); a broken file fails with ``file:line``, never later.
- Each ``zh.po`` holds exactly its template's messages, translated, current, with the same
  placeholders; every message the code asks for exists, and every message is asked for.
- Plural forms are gettext's own (a three-form language works); ``--explain``'s stages are the
  ones the runtime records; the catalogs cost the CLI's ``run`` nothing until a word is needed.
"""

from __future__ import annotations

import ast
import re
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest

from engine import catalog as cat
from engine.catalog import Catalog, PoError, check, parse_po, read
from engine.lang import DEFAULT, LANGS

REPO = Path(__file__).resolve().parent.parent
FILES = sorted(p for p in REPO.glob("**/locale/*.po*") if ".venv" not in p.parts and p.suffix in (".po", ".pot"))

# Each catalog: its folder, the module that reads it, the code that may ask for its messages,
# and the functions that do (name -> (index of the key argument, how the key is made from it)).
CATALOGS = {
    "engine": ("engine/locale", "engine.explain", ("engine", "lessons", "tui"),
               {"ui": (0, "ui.{}"), "text": (1, "{}")}),
    "lessons": ("lessons/locale", "lessons.i18n", ("lessons", "tui"),
                {"msg": (1, "{}"), "count": (2, "n.{}")}),
    "tui": ("tui/locale", "tui.i18n", ("tui",), {"t": (1, "{}"), "tn": (1, "{}")}),
    "tui.widgets": ("tui/widgets/locale", "tui.widgets.strings", ("tui",), {"tr": (0, "{}"), "counted": (0, "{}")}),
}


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_every_catalog_in_the_tree_is_covered_here():
    folders = {str(p.parent.relative_to(REPO)) for p in FILES}
    assert folders == {spec[0] for spec in CATALOGS.values()}
    for folder in folders:
        names = {p.name for p in (REPO / folder).iterdir()}
        assert names == {cat.TEMPLATE} | {f"{lang}.po" for lang in LANGS if lang != DEFAULT}, folder


# -- read strictly ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_each_file_reads_strictly(path):
    entries = read(path)
    assert len(entries) > 10
    assert all(e.comment for e in entries[1:]), "every message says where it shows (#.) for translators"


@pytest.mark.skipif(not shutil.which("msgfmt"), reason="gettext's msgfmt is not installed")
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_msgfmt_check_agrees(path, tmp_path):
    proc = subprocess.run(["msgfmt", "--check", "-o", str(tmp_path / "out.mo"), str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


HEAD = 'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
PLURAL_HEAD = 'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\nPlural-Forms: nplurals=1; plural=0;\\n"\n\n'


@pytest.mark.parametrize("text, where, says", [
    ('msgctxt "a"\nmsgid "A"\nmsgstr "甲"\n', "x.po:1", "header"),
    ('msgid ""\nmsgstr "Content-Type: text/plain; charset=latin-1\\n"\n', "x.po:1", "UTF-8"),
    (HEAD + 'msgctxt "a"\nmsgid "A"\nmsgstr "甲"\n\nmsgctxt "a"\nmsgid "B"\nmsgstr "乙"\n', "x.po:8", "again"),
    (HEAD + 'msgid "A"\nmsgstr "甲"\n', "x.po:4", "no msgctxt"),
    (HEAD + 'msgctxt "a"\nmsgid "A"\n\nmsgctxt "b"\nmsgid "B"\nmsgstr "乙"\n', "x.po:7", "msgstr was expected"),
    (HEAD + 'msgctxt "a"\nmsgid "A"\n', "x.po:5", "without msgstr"),
    (HEAD + 'msgctxt "a"\nmsgid "A"\n#. late\nmsgstr "甲"\n', "x.po:6", "comment inside"),
    (HEAD + 'msgctxt "a"\nmsgid "A"\nmsgstr "甲\\q"\n', "x.po:6", "escape"),
    (HEAD + 'msgctxt "a"\nmsgid "A"\nmsgstr "甲"\n"乙\n', "x.po:7", "quoted"),
    (HEAD + 'msgctxt "a"\nmsgid "A"\nmsgstr "甲"\nmsgid_plural "As"\n', "x.po:7", "right after a msgid"),
    (HEAD + 'msgctxt "a"\nmsgid "A"\nmsgstr "甲"\nmsgstr "乙"\n', "x.po:7", "right after a msgid"),
    (HEAD + 'msgctxt "a"\nmsgid "A"\nmsgtext "甲"\n', "x.po:6", "unknown keyword"),
    (HEAD + '#, python-brace-format\nmsgctxt "a"\nmsgid "{n} A"\nmsgstr "{m} 个甲"\n', "x.po:5", "placeholders"),
    (HEAD + 'msgctxt "a"\nmsgid "{n} A"\nmsgstr "{n} 个甲"\n', "x.po:4", "python-brace-format"),
    (HEAD + 'msgctxt "a"\nmsgid "A\\n"\nmsgstr "甲"\n', "x.po:4", "newline"),
    (HEAD + '#, python-brace-format\nmsgctxt "a"\nmsgid "{n A"\nmsgstr "{n} 个甲"\n', "x.po:5", "brace"),
    (HEAD + '#, python-brace-format\nmsgctxt "a"\nmsgid "{n} A"\nmsgid_plural "{n} As"\nmsgstr "{n} 个甲"\n',
     "x.po:8", "msgstr[0]"),
    (HEAD + '#, python-brace-format\nmsgctxt "a"\nmsgid "{n} A"\nmsgid_plural "{n} As"\nmsgstr[1] "{n} 个甲"\n',
     "x.po:8", "out of order"),
    (HEAD + '#, python-brace-format\nmsgctxt "a"\nmsgid "{n} A"\nmsgid_plural "{n} As"\nmsgstr[0] "{n} 个甲"\n',
     "x.po:1", "Plural-Forms"),
    (PLURAL_HEAD + '#, python-brace-format\nmsgctxt "a"\nmsgid "{n} A"\nmsgid_plural "{n} As"\n'
     'msgstr[0] "{n} 个甲"\nmsgstr[1] "{n} 个甲"\n', "x.po:5", "2 plural forms"),
    ('msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\nPlural-Forms: nplurals=2; plural=n >>> 1;\\n"\n\n'
     '#, python-brace-format\nmsgctxt "a"\nmsgid "{n} A"\nmsgid_plural "{n} As"\nmsgstr[0] "{n} 甲"\nmsgstr[1] "{n} 甲"\n',
     "x.po:1", "Plural-Forms"),
])
def test_a_broken_file_fails_naming_its_line(text, where, says):
    with pytest.raises(PoError, match=f"^{re.escape(where)}: .*{re.escape(says)}"):
        check(parse_po(text, "x.po"), "x.po")


def test_a_template_keeps_its_msgstr_empty():
    text = HEAD + 'msgctxt "a"\nmsgid "A"\nmsgstr "A"\n'
    check(parse_po(text, "x.po"), "x.po")
    with pytest.raises(PoError, match=r"^x.pot:4: .*stays empty"):
        check(parse_po(text, "x.pot"), "x.pot", template=True)


def _folder(tmp_path: Path, pot: str, zh: str) -> Path:
    (tmp_path / cat.TEMPLATE).write_text(HEAD + pot, encoding="utf-8")
    (tmp_path / "zh.po").write_text(zh, encoding="utf-8")
    return tmp_path


def test_a_broken_translation_fails_at_the_first_word_asked_for(tmp_path):
    folder = _folder(tmp_path, '#. x\n#, python-brace-format\nmsgctxt "a"\nmsgid "Hello {name}"\nmsgstr ""\n',
                     HEAD + '#. x\n#, python-brace-format\nmsgctxt "a"\nmsgid "Hello {name}"\nmsgstr "你好 {nmae}"\n')
    messages = Catalog(folder)
    assert messages("en", "a", name="Li") == "Hello Li"
    with pytest.raises(PoError, match=r"^zh.po:6: a: the translation's placeholders \['nmae'\]"):
        messages("zh", "a", name="Li")


def test_fuzzy_untranslated_and_unknown_languages_fall_back_to_english(tmp_path):
    folder = _folder(tmp_path, '#. x\nmsgctxt "a"\nmsgid "Apple"\nmsgstr ""\n\n#. x\nmsgctxt "b"\nmsgid "Banana"\n'
                     'msgstr ""\n\n#. x\nmsgctxt "c"\nmsgid "Cherry"\nmsgstr ""\n',
                     HEAD + 'msgctxt "a"\nmsgid "Apple"\nmsgstr "苹果"\n\n#, fuzzy\nmsgctxt "b"\nmsgid "Banana"\n'
                     'msgstr "香蕉"\n\nmsgctxt "c"\nmsgid "Cherry"\nmsgstr ""\n')
    messages = Catalog(folder)
    assert [messages.text("zh", k) for k in "abc"] == ["苹果", "Banana", "Cherry"]
    assert [messages.text("fr", k) for k in "abc"] == ["Apple", "Banana", "Cherry"]
    with pytest.raises(KeyError, match="no message 'd'"):
        messages.text("zh", "d")


def test_plural_forms_are_gettexts_own_three_forms_too(tmp_path):
    """A language with three forms (Polish's rule) gets all three: count() is ngettext, not a one/other pair."""
    pot = '#. x\n#, python-brace-format\nmsgctxt "n.file"\nmsgid "{n} file"\nmsgid_plural "{n} files"\n' \
          'msgstr[0] ""\nmsgstr[1] ""\n'
    zh = ('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n'
          '"Plural-Forms: nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);\\n"\n\n'
          '#, python-brace-format\nmsgctxt "n.file"\nmsgid "{n} file"\nmsgid_plural "{n} files"\n'
          'msgstr[0] "{n} plik"\nmsgstr[1] "{n} pliki"\nmsgstr[2] "{n} plików"\n')
    messages = Catalog(_folder(tmp_path, pot, zh))
    assert [messages.plural("zh", "n.file", n).format(n=n) for n in (1, 2, 5, 22)] == \
        ["1 plik", "2 pliki", "5 plików", "22 pliki"]
    assert [messages.plural("en", "n.file", n).format(n=n) for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    with pytest.raises(TypeError, match="plural"):
        messages.text("en", "n.file")


# -- parity --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CATALOGS))
@pytest.mark.parametrize("lang", [lang for lang in LANGS if lang != DEFAULT])
def test_each_translation_holds_exactly_its_templates_messages(name, lang):
    folder = REPO / CATALOGS[name][0]
    template = {e.context: e for e in read(folder / cat.TEMPLATE) if e.context}
    translated = {e.context: e for e in read(folder / f"{lang}.po") if e.context}
    assert set(translated) == set(template), (f"missing in {lang}.po: {sorted(set(template) - set(translated))}; "
                                              f"not in the template: {sorted(set(translated) - set(template))}")
    for key, en in template.items():
        tr = translated[key]
        assert (tr.msgid, tr.plural) == (en.msgid, en.plural), f"{key}: translates an older English text"
        assert all(form.strip() for form in tr.forms or (tr.msgstr,)), f"{key} is not translated"
        assert "fuzzy" not in tr.flags, f"{key} is fuzzy"
        for form in tr.forms or (tr.msgstr,):
            assert _placeholders(form) == _placeholders(en.plural or en.msgid), key


_HAN = r"[\u3400-\u4dbf\u4e00-\u9fff]"
_LATIN = r"[A-Za-z0-9]"


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_chinese_spaces_latin_from_chinese(name):
    for e in read(REPO / CATALOGS[name][0] / "zh.po")[1:]:
        for form in e.forms or (e.msgstr,):
            glued = re.findall(f"{_HAN}{_LATIN}|{_LATIN}{_HAN}", form)
            assert not glued, f"{e.context}: no space in {glued}: {form!r}"


# -- every message the code names exists, and every message is named ------------------------------

def _module_of(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.AST, module: str, is_package: bool) -> dict[str, str]:
    """Local name -> the dotted thing it stands for (``tr`` -> ``tui.widgets.strings.tr``)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = module.split(".")
            if node.level:
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                names[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    names[alias.name.split(".")[0]] = alias.name.split(".")[0]
    return names


def _pattern(node: ast.AST, assigned: dict[str, list[ast.AST]] | None = None) -> str | None:
    """A regular expression for the string ``node`` makes; None when no part of it is known.
    A name stands for what it is set to in the file (``key = f"req.{rid}"``), when that is one thing."""
    if isinstance(node, ast.Name) and assigned and len(assigned.get(node.id, ())) == 1:
        return _pattern(assigned[node.id][0])
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.escape(node.value)
    if isinstance(node, ast.JoinedStr):
        parts = [_pattern(v) if isinstance(v, ast.Constant) else (_pattern(v.value) or r"[\w.-]+") for v in node.values]
        return "".join(parts)
    if isinstance(node, ast.IfExp):
        body, orelse = _pattern(node.body), _pattern(node.orelse)
        return f"(?:{body}|{orelse})" if body and orelse else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _pattern(node.left), _pattern(node.right)
        return None if left is None and right is None else (left or r"[\w.-]+") + (right or r"[\w.-]+")
    return None


def _scan(name: str) -> tuple[list[tuple[str, str]], set[str]]:
    """The lookups of catalog ``name`` in the code, as (where, key pattern), and every string constant there."""
    folder, reader, packages, functions = CATALOGS[name]
    lookups, constants = [], set()
    for package in packages:
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            module = _module_of(path)
            names = _imported(tree, module, path.name == "__init__.py")
            assigned: dict[str, list[ast.AST]] = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    assigned.setdefault(node.targets[0].id, []).append(node.value)
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    constants.add(node.value)
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                if isinstance(func, ast.Name):
                    target = names.get(func.id, f"{module}.{func.id}")
                elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                    owner = "MESSAGES" if func.value.id == "MESSAGES" else names.get(func.value.id, "")
                    target = f"{module if owner == 'MESSAGES' else owner}.{func.attr}"
                else:
                    continue
                called, _, function = target.rpartition(".")
                if called != reader or function not in functions:
                    continue
                index, form = functions[function]
                if index < len(node.args) and (pattern := _pattern(node.args[index], assigned)) is not None:
                    lookups.append((f"{path.relative_to(REPO)}:{node.lineno}", form.format(pattern)
                                    if form == "{}" else re.escape(form.split("{")[0]) + pattern))
    return lookups, constants


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_every_message_the_code_asks_for_exists_and_every_message_is_asked_for(name):
    keys = set(Catalog(REPO / CATALOGS[name][0]).template())
    lookups, constants = _scan(name)
    assert len(lookups) > 3, "the scan finds the code's lookups"
    missing = [f"{where}: {pattern}" for where, pattern in lookups
               if not any(re.fullmatch(pattern, key) for key in keys)]
    assert not missing, f"the code asks for messages the catalog lacks: {missing}"
    used = {key for key in keys if key in constants or any(re.fullmatch(p, key) for _, p in lookups)}
    used |= {f"{key}.one" for key in used}                 # tn(), counted(): one thing, said in other words
    assert keys <= used, f"never asked for: {sorted(keys - used)}"


def test_explain_explains_exactly_the_stages_the_engine_records():
    from engine import explain

    code = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "engine").rglob("*.py"))
    recorded = set(re.findall(r'(?:\bbegin|\.stage)\("(\w+)"', code))
    assert len(recorded) > 10
    assert set(explain.stage_ids()) == recorded
    assert explain.stage_text("no-such-stage", "zh") == explain.ui("other", "zh")


def test_every_package_reads_the_locale_with_the_engines_one_detector():
    sources = [p for package in ("engine", "lessons", "tui") for p in (REPO / package).rglob("*.py")]
    readers = [str(p.relative_to(REPO)) for p in sources
               if re.search(r"(?:environ(?:\.get)?\(?\[?|getenv\()[\"'](?:LANG|LC_ALL|LC_MESSAGES|LANGUAGE)[\"']",
                            p.read_text(encoding="utf-8"))]
    assert readers == [], f"a second language detector: {readers} (engine.lang.detect is the one)"


# -- light --------------------------------------------------------------------------------------

def test_the_catalogs_cost_nothing_until_a_word_is_asked_for():
    """Modules make their Catalog at import; gettext and the files wait for the first lookup,
    and the CLI's run path does not import the catalog at all."""
    code = ("import sys, tui.launcher, engine.cli, engine.client\n"
            "from engine.cli.fastrun import parse_run\n"
            "engine.cli.config_from(parse_run(['--rm', 'lab', 'true']))\n"
            "print('catalog' if 'engine.catalog' in sys.modules else '-')\n"
            "import engine.explain, lessons.i18n, tui.widgets.strings\n"
            "print('gettext' if 'gettext' in sys.modules else '-')\n"
            "print(engine.explain.stage_title({'id': 'rootfs'}, 'zh'), 'gettext' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.splitlines() == ["-", "-", "挂载镜像层和容器存储层（overlayfs） True"]
