"""A container's mount table as its first process sees it
(/proc/PID/mountinfo), with the overlay's image layers, writable layer and
work directory picked out of the root's mount options."""

from __future__ import annotations

from .procfs import _read


def mounts(pid: int) -> list[dict]:
    """The mount table as process ``pid`` sees it (/proc/PID/mountinfo), with the
    overlay's image layers, writable layer and work dir picked out."""
    text = _read(f"/proc/{pid}/mountinfo") or ""
    out = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        parts, rparts = left.split(), right.split()
        if len(parts) < 6 or len(rparts) < 3:
            continue
        entry = {"id": int(parts[0]), "parent": int(parts[1]), "target": _unescape(parts[4]),
                 "options": parts[5], "fstype": rparts[0], "source": _unescape(rparts[1]),
                 "super_options": rparts[2]}
        if entry["fstype"] == "overlay":
            opts = dict(o.split("=", 1) for o in _split_escaped(rparts[2], ",") if "=" in o)
            entry["overlay"] = {"lower": [_unescape(p) for p in _split_lower(opts.get("lowerdir", ""))],
                                "upper": opts.get("upperdir", ""), "work": opts.get("workdir", "")}
        out.append(entry)
    return out


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1:i + 4].isdigit():
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _split_lower(text: str) -> list[str]:
    return [p.replace("\\:", ":").replace("\\,", ",") for p in _split_escaped(text, ":")] if text else []


def _split_escaped(text: str, sep: str) -> list[str]:
    """Split on ``sep``; a backslash keeps the next character (escapes and all)."""
    if "\\" not in text:
        return text.split(sep)
    out, cur, i = [], "", 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            cur += text[i:i + 2]
            i += 2
            continue
        if text[i] == sep:
            out.append(cur)
            cur = ""
        else:
            cur += text[i]
        i += 1
    out.append(cur)
    return out

