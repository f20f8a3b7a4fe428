"""The site's one style sheet and one script, put inline in every page (it
works from a file:// folder, offline, with nothing fetched), and the Content
Security Policy that allows exactly these two and nothing else: should any
markup of a lesson get through unescaped, the browser would still run no
script of it and load nothing it names."""

from __future__ import annotations

import base64
import hashlib

CSS = """
:root { color-scheme: light dark; --fg: #1d232a; --bg: #fdfdfc; --muted: #5b6570; --accent: #0b6bcb;
  --code-bg: #f1f3f5; --border: #d8dde3; --ok: #1a7f37; --no: #b42318; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e8eb; --bg: #15181c; --muted: #9aa4ae; --accent: #6cb6ff; --code-bg: #22272e;
    --border: #3a424b; --ok: #57c278; --no: #ff7b72; } }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: var(--bg); line-height: 1.6;
  font: 17px/1.6 system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC",
  sans-serif; }
main, header.site, footer.site { max-width: 46rem; margin: 0 auto; padding: 0 1rem; }
header.site { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline; justify-content: space-between;
  padding-top: .75rem; padding-bottom: .5rem; border-bottom: 1px solid var(--border); }
header.site .home { font-weight: 600; }
nav.links { display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
a { color: var(--accent); text-underline-offset: .15em; }
a.term { text-decoration-style: dotted; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 1.25rem 0 .75rem; }
h2 { font-size: 1.25rem; line-height: 1.3; margin: 2.25rem 0 .5rem; padding-top: .75rem;
  border-top: 1px solid var(--border); }
h3 { font-size: 1rem; margin: 1.25rem 0 .4rem; color: var(--muted); }
.number { color: var(--muted); font-weight: 400; }
code { font: .9em/1.45 ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace;
  background: var(--code-bg); border-radius: 4px; padding: .05em .3em; overflow-wrap: anywhere; }
pre { background: var(--code-bg); border-radius: 6px; padding: .7rem .8rem; overflow-x: auto; margin: .5rem 0; }
pre code { background: none; padding: 0; overflow-wrap: normal; white-space: pre; }
.cmd pre code { white-space: pre-wrap; overflow-wrap: anywhere; }
.cmd { position: relative; display: flex; align-items: flex-start; gap: .5rem; background: var(--code-bg);
  border-radius: 6px; margin: .4rem 0; }
.cmd pre { flex: 1; margin: 0; min-width: 0; }
.cmd button.copy { flex: none; margin: .45rem .45rem 0 0; font: inherit; font-size: .85rem; cursor: pointer;
  padding: .25rem .7rem; min-height: 2rem; border: 1px solid var(--border); border-radius: 5px;
  background: var(--bg); color: var(--fg); }
.cmd button.copy.done { color: var(--ok); border-color: var(--ok); }
ul.checks { padding-left: 1.2rem; }
ul.checks li::marker { content: "✓  "; color: var(--ok); }
details { border: 1px solid var(--border); border-radius: 6px; padding: .4rem .75rem; margin: .5rem 0; }
details summary { cursor: pointer; font-weight: 600; }
ol.lessons { padding-left: 0; list-style: none; }
ol.lessons li { margin: .35rem 0; padding: .5rem .75rem; border: 1px solid var(--border); border-radius: 6px; }
ol.lessons .number { display: inline-block; min-width: 2rem; }
dl.glossary dt { font-weight: 600; margin-top: 1rem; }
dl.glossary dd { margin: .2rem 0 0 0; }
dl.glossary dt:target, dl.glossary dt:target + dd { background: var(--code-bg); }
.options li { margin: .25rem 0; }
.verdict.right { color: var(--ok); font-weight: 600; }
.verdict.wrong { color: var(--no); font-weight: 600; }
nav.pager { display: flex; justify-content: space-between; gap: 1rem; margin: 2.5rem 0 1rem;
  padding-top: 1rem; border-top: 1px solid var(--border); }
footer.site { color: var(--muted); font-size: .9rem; padding-bottom: 2rem; }
.langs a, .langs span { padding: .1rem .4rem; }
.langs span { border: 1px solid var(--border); border-radius: 4px; }
@media (max-width: 30rem) { body { font-size: 16px; } h1 { font-size: 1.35rem; } }
"""

# Every button.copy copies the text of the <pre> beside it: the Clipboard API
# where the page may use it, else a selection and execCommand (file:// pages
# in some browsers). Its label says so for a moment ("Copied").
JS = """
(function () {
  function flash(button) {
    var label = button.textContent;
    button.textContent = button.getAttribute("data-done");
    button.classList.add("done");
    setTimeout(function () { button.textContent = label; button.classList.remove("done"); }, 1500);
  }
  function fallback(text, button) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); flash(button); } catch (e) { /* nothing to copy to */ }
    document.body.removeChild(area);
  }
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.parentNode.querySelector("pre").textContent;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { flash(button); },
                                                 function () { fallback(text, button); });
      } else {
        fallback(text, button);
      }
    });
  });
})();
"""
CSS += ".offscreen { position: fixed; left: -1000px; top: 0; }\n"


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CSP = (f"default-src 'none'; style-src {_sha256(CSS)}; script-src {_sha256(JS)}; "
       "img-src 'none'; base-uri 'none'; form-action 'none'")
