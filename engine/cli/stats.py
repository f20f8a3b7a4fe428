"""``stats``: what containers use right now, as ``docker stats`` shows it.

Each figure comes from two samples a second apart (engine.observe.usage):
``--no-stream`` prints one table and exits; otherwise the table is redrawn
in place every second until Ctrl+C (exit 0, the cursor shown again). To a
pipe or a file there is no redrawing: one table per second, one after the
other, each as ``--no-stream`` prints it.

``--format``: ``table`` (default), ``json`` (one object per line, docker's
keys), or a template of docker's fields -- ``{{.Name}}: {{.CPUPerc}}``, with
``table`` in front for a header line and aligned columns.
"""

from __future__ import annotations

import json
import re
import sys
import time

from .. import errors
from . import PROG

INTERVAL = 1.0          # seconds between samples: docker's refresh

# docker's fields, their column headers, in its default table's order.
HEADERS = {"ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
           "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
           "Container": "CONTAINER"}
DEFAULT_FORMAT = "table " + "\t".join("{{." + f + "}}" for f in list(HEADERS)[:-1])
_FIELD = re.compile(r"{{\s*\.(\w+)\s*}}")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def _add_stats(sub, help_text: str) -> None:
    st = sub.add_parser("stats", help=help_text,
                        description="Show what containers use: CPU, memory against its limit, network and "
                                    "block I/O, processes. Live (redrawn every second, Ctrl+C ends) unless "
                                    "--no-stream. With no CONTAINER: every running container (-a: all).")
    st.add_argument("-a", "--all", action="store_true", help="show stopped containers too (default: running)")
    st.add_argument("--no-stream", action="store_true", help="print one table and exit")
    st.add_argument("--no-trunc", action="store_true", help="show full container ids")
    st.add_argument("--format", default="table", metavar="FORMAT",
                    help="table, json, or a template: 'table {{.Name}}\\t{{.CPUPerc}}' "
                         "(fields: " + ", ".join(HEADERS) + ")")
    st.add_argument("containers", nargs="*", metavar="CONTAINER", help="container name or id (a unique prefix will do)")
    st.set_defaults(func=cmd_stats)


def size(value: float, base: float, units: tuple[str, ...], digits: int) -> str:
    """``value`` bytes as docker writes them: 1.352MiB (base 1024, 4 digits),
    1.23kB (base 1000, 3 digits)."""
    i = 0
    while value >= base and i < len(units) - 1:
        value /= base
        i += 1
    return f"{value:.{digits}g}{units[i]}"


def _mem(n: float) -> str:
    return size(n, 1024.0, _BINARY, 4)          # memory: MiB, GiB (docker's BytesSize)


def _dec(n: float) -> str:
    return size(n, 1000.0, _DECIMAL, 3)         # I/O: kB, MB (docker's HumanSizeWithPrecision)


def row(fig: dict, typed: str, no_trunc: bool) -> dict[str, str]:
    """docker's fields of a container (engine.observe.usage.figures), as strings."""
    mem, dec = _mem, _dec
    return {"BlockIO": f"{dec(fig['block_read'])} / {dec(fig['block_write'])}",
            "CPUPerc": f"{fig['cpu_percent']:.2f}%", "Container": typed,
            "ID": fig["id"] if no_trunc else fig["id"][:12],
            "MemPerc": f"{fig['memory_percent']:.2f}%",
            "MemUsage": f"{mem(fig['memory'])} / {mem(fig['memory_limit'])}",
            "Name": fig["name"], "NetIO": f"{dec(fig['net_rx'])} / {dec(fig['net_tx'])}",
            "PIDs": str(fig["pids"])}


def render(rows: list[dict[str, str]], fmt: str) -> list[str]:
    """The lines of one table (or one line per container for json and plain templates)."""
    if fmt == "json":
        return [json.dumps(r, separators=(",", ":")) for r in rows]
    template = DEFAULT_FORMAT if fmt == "table" else fmt
    table = template.startswith("table")
    if table:
        template = template[5:].lstrip()
    template = template.replace("\\t", "\t").replace("\\n", "\n")

    def fill(values: dict[str, str]) -> str:
        return _FIELD.sub(lambda m: values[m.group(1)], template)

    lines = [fill(r) for r in rows]
    if not table:
        return lines
    cells = [fill(HEADERS).split("\t")] + [line.split("\t") for line in lines]
    # docker's tabwriter: each column as wide as its widest cell plus 3, at least 10.
    widths = [max(max((len(c[i]) for c in cells if i < len(c)), default=0) + 3, 10)
              for i in range(max(len(c) for c in cells))]
    return ["".join(v.ljust(widths[i]) if i < len(c) - 1 else v for i, v in enumerate(c)) for c in cells]


def check_format(fmt: str) -> None:
    if fmt in ("table", "json"):
        return
    unknown = sorted({m.group(1) for m in _FIELD.finditer(fmt)} - set(HEADERS))
    if unknown:
        raise errors.InvalidArgument(f"invalid --format: no field {unknown[0]!r} "
                                     f"(fields: {', '.join(HEADERS)})")
    if "{{" not in fmt:
        raise errors.InvalidArgument(f"invalid --format {fmt!r}: use table, json or a template "
                                     "such as '{{.Name}} {{.CPUPerc}}'")


class _Watch:
    """The containers to show and their last sample, one refresh at a time."""

    def __init__(self, client, refs: list[str], all_: bool):
        self.client, self.refs, self.all = client, refs, all_
        self.before: dict[str, dict] = {}
        self.typed: dict[str, str] = {}

    def records(self) -> list[dict]:
        if not self.refs:
            records = self.client.ps(all=self.all)
            for r in records:
                self.typed.setdefault(r["id"], r["id"][:12])
            return records
        records = []
        for ref in self.refs:
            try:
                record = self.client.inspect(ref)
            except errors.ContainerNotFound:
                if not self.before:     # named and never seen: docker's error
                    raise
                continue                # removed meanwhile: no longer shown
            self.typed[record["id"]] = ref
            records.append(record)
        return records

    def sample(self) -> list[dict]:
        """Every container's figures since the last sample (the first call: since none)."""
        from ..observe.usage import figures

        out = []
        now: dict[str, dict] = {}
        for record in self.records():
            s = now[record["id"]] = self.client.usage(record)
            out.append(figures(self.before.get(record["id"]), s))
        self.before = now
        return out


def cmd_stats(args, client) -> int:
    check_format(args.format)
    watch = _Watch(client, args.containers, args.all)
    try:
        watch.records()                 # every container named exists, before anything is shown
    except errors.ContainerNotFound as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1                        # docker's code for "No such container"
    if args.no_stream:
        watch.sample()
        time.sleep(INTERVAL)
        _print(render(_rows(watch, args), args.format))
        return 0
    live = sys.stdout.isatty()
    out = sys.stdout
    try:
        watch.sample()
        if live:
            out.write("\033[?25l\033[2J")       # hide the cursor, clear the screen
        while True:
            time.sleep(INTERVAL)
            lines = render(_rows(watch, args), args.format)
            if live:
                out.write("\033[H" + "".join(line + "\033[K\n" for line in lines) + "\033[J")
                out.flush()
            else:
                _print(lines)
    except KeyboardInterrupt:           # Ctrl+C: the way out of a live view, not an error
        return 0
    finally:
        if live:
            out.write("\033[?25h")      # the cursor back
            out.flush()


def _rows(watch: _Watch, args) -> list[dict[str, str]]:
    return [row(fig, watch.typed.get(fig["id"], fig["name"]), args.no_trunc) for fig in watch.sample()]


def _print(lines: list[str]) -> None:
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
