"""The site's pages, one function each: the language chooser at the top, and
per language the lesson list, each lesson, and the glossary.

Pages of one language live in a folder of their own (``en/``, ``zh/``) under
the same file names, so a page's twin in the other language is always
``../<lang>/<the same file>``. Everything from the course goes through
:func:`~.render.esc` or :class:`~.render.Markdown`.
"""

from __future__ import annotations

from ..course_files import FOLDER_RE
from ..i18n import count, msg
from ..model import Course, Lesson, Step
from .assets import CSP, CSS, JS
from .render import Markdown, describe, esc, plain

# Each language's name in its own words, for the switch between them.
NAMES = {"en": "English", "zh": "中文"}
HTML_LANG = {"en": "en", "zh": "zh-Hans"}


def lesson_file(lesson: Lesson) -> str:
    return f"{lesson.folder}.html"


def lesson_number(lesson: Lesson, index: int) -> int:
    match = FOLDER_RE.match(lesson.folder)
    return int(match.group(1)) if match else index + 1


def _page(lang: str, title: str, body: str, *, header: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="{HTML_LANG.get(lang, "en")}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{header}'
            f'<main>\n{body}\n</main>\n<footer class="site"><p>{esc(msg(lang, "site.made_with"))}</p></footer>\n'
            f'<script>{JS}</script>\n</body>\n</html>\n')


def _header(course: Course, lang: str, file: str) -> str:
    """The course's name (to the lesson list), the glossary, and the language switch
    to ``file`` in every other language."""
    langs = []
    for other in course.languages:
        if other == lang:
            langs.append(f'<span lang="{HTML_LANG.get(other, other)}">{esc(NAMES.get(other, other))}</span>')
        else:
            langs.append(f'<a class="switch" href="../{other}/{file}" hreflang="{HTML_LANG.get(other, other)}" '
                         f'lang="{HTML_LANG.get(other, other)}">{esc(NAMES.get(other, other))}</a>')
    return ('<header class="site">\n'
            f'<a class="home" href="index.html">{esc(course.title.get(lang, course.id))}</a>\n'
            f'<nav class="links"><a href="glossary.html">{esc(msg(lang, "site.glossary"))}</a>'
            f'<span class="langs" aria-label="{esc(msg(lang, "site.language"))}">{"".join(langs)}</span></nav>\n'
            '</header>\n')


def chooser(course: Course) -> str:
    """The top ``index.html``: the course's title and a way in per language."""
    items = "".join(f'<li lang="{HTML_LANG.get(lang, lang)}"><a href="{lang}/index.html">'
                    f'{esc(course.title.get(lang, course.id))}</a> ({esc(NAMES.get(lang, lang))})</li>\n'
                    for lang in course.languages)
    first = course.languages[0]
    title = " / ".join(course.title.get(lang, course.id) for lang in course.languages)
    return _page(first, title, f"<h1>{esc(title)}</h1>\n<ul>\n{items}</ul>")


def index(course: Course, lang: str, md: Markdown) -> str:
    """One language's lesson list."""
    items = []
    for i, lesson in enumerate(course.lessons):
        items.append(f'<li><span class="number">{lesson_number(lesson, i)}</span> '
                     f'<a href="{esc(lesson_file(lesson))}">{esc(plain(lesson.title.get(lang, lesson.id)))}</a></li>\n')
    title = course.title.get(lang, course.id)
    body = (f"<h1>{esc(title)}</h1>\n<p>{esc(msg(lang, 'site.intro', lessons=count(lang, len(course.lessons), 'lesson')))}"
            f"</p>\n<h2>{esc(msg(lang, 'site.lessons'))}</h2>\n"
            f'<ol class="lessons">\n{"".join(items)}</ol>\n'
            f'<p><a href="glossary.html">{esc(msg(lang, "site.glossary"))}</a></p>')
    return _page(lang, title, body, header=_header(course, lang, "index.html"))


def glossary(course: Course, lang: str) -> str:
    terms = sorted(course.glossary.values(), key=lambda t: t.term.get(lang, t.id).lower())
    rows = "".join(f'<dt id="term-{esc(t.id)}">{esc(t.term.get(lang, t.id))}</dt>\n'
                   f'<dd>{esc(t.definition.get(lang, ""))}</dd>\n' for t in terms)
    title = msg(lang, "site.glossary")
    body = f'<h1>{esc(title)}</h1>\n<dl class="glossary">\n{rows}</dl>'
    return _page(lang, f"{title} — {course.title.get(lang, course.id)}", body,
                 header=_header(course, lang, "glossary.html"))


def _command(text: str, lang: str) -> str:
    return (f'<div class="cmd"><pre><code>{esc(text)}</code></pre>'
            f'<button class="copy" type="button" data-done="{esc(msg(lang, "site.copied"))}">'
            f'{esc(msg(lang, "site.copy"))}</button></div>\n')


def _step(step: Step, n: int, lang: str, md: Markdown) -> str:
    text = step.text.get(lang)
    title = text.title if text else step.id
    out = [f'<section class="step" id="step-{esc(step.id)}">\n'
           f'<h2><span class="number">{esc(msg(lang, "site.step", n=n))}</span> {md.inline(title)}</h2>\n']
    if text:
        out.append(md.block(text.body))
    if step.commands:
        out.append(f"<h3>{esc(msg(lang, 'site.commands'))}</h3>\n")
        for command in step.commands:
            out.append(_command(command.text, lang))
            if command.type:
                out.append(f"<p>{esc(msg(lang, 'site.then_type'))}</p>\n")
                out += [_command(line, lang) for line in command.type]
    if step.checks:
        out.append(f"<h3>{esc(msg(lang, 'site.checks'))}</h3>\n<ul class=\"checks\">\n")
        out += [f"<li>{md.inline(describe(spec, lang))}</li>\n" for spec in step.checks]
        out.append("</ul>\n")
    if step.quiz and text:
        out.append(_quiz(step, text, lang, md))
    for i, hint_id in enumerate(step.hints):
        hint = text.hints.get(hint_id) if text else None
        if hint:
            out.append(f"<details class=\"hint\"><summary>{esc(msg(lang, 'site.hint', n=i + 1))}</summary>\n"
                       f"{md.block(hint)}</details>\n")
    out.append("</section>\n")
    return "".join(out)


def _quiz(step: Step, text, lang: str, md: Markdown) -> str:
    quiz = step.quiz
    which = msg(lang, "site.quiz.several" if quiz.multiple else "site.quiz.one")
    options = "".join(f"<li>{md.inline(text.options[o].text)}</li>\n" for o in quiz.options if o in text.options)
    answers = []
    for o in quiz.options:
        if o not in text.options:
            continue
        right = o in quiz.answer
        verdict = (f'<span class="verdict {"right" if right else "wrong"}">'
                   f'{esc(msg(lang, "site.quiz.right" if right else "site.quiz.wrong"))}</span>')
        answers.append(f"<li>{verdict} {md.inline(text.options[o].text)}{md.block(text.options[o].explanation)}</li>\n")
    return (f"<h3>{esc(msg(lang, 'site.quiz'))}</h3>\n{md.block(text.question)}<p>{esc(which)}</p>\n"
            f'<ol class="options" type="A">\n{options}</ol>\n'
            f"<details class=\"answer\"><summary>{esc(msg(lang, 'site.quiz.answer'))}</summary>\n"
            f'<ol class="options" type="A">\n{"".join(answers)}</ol></details>\n')


def lesson(course: Course, index_: int, lang: str, md: Markdown) -> str:
    les = course.lessons[index_]
    number = lesson_number(les, index_)
    title = les.title.get(lang, les.id)
    body = [f'<h1><span class="number">{esc(msg(lang, "site.lesson", n=number))}</span> {md.inline(title)}</h1>\n',
            md.block(les.intro.get(lang, ""))]
    body += [_step(step, n, lang, md) for n, step in enumerate(les.steps, 1)]
    body.append(f"<p>{esc(msg(lang, 'site.for_real'))}</p>\n"
                + _command(f"container-lab --lang {lang} --lesson {number}", lang))
    pager = []
    if index_ > 0:
        prev = course.lessons[index_ - 1]
        pager.append(f'<a rel="prev" href="{esc(lesson_file(prev))}">← {esc(plain(prev.title.get(lang, prev.id)))}</a>')
    else:
        pager.append(f'<a href="index.html">← {esc(msg(lang, "site.lessons"))}</a>')
    if index_ + 1 < len(course.lessons):
        nxt = course.lessons[index_ + 1]
        pager.append(f'<a rel="next" href="{esc(lesson_file(nxt))}">{esc(plain(nxt.title.get(lang, nxt.id)))} →</a>')
    body.append(f'<nav class="pager">{"".join(pager)}</nav>')
    return _page(lang, f"{plain(title)} — {course.title.get(lang, course.id)}", "".join(body),
                 header=_header(course, lang, lesson_file(les)))
