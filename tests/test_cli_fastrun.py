"""``run``'s fast path (engine.cli.fastrun) reads a command line exactly as
argparse does -- or hands it to argparse.

Every line below is parsed both ways: when the fast path answers, its
namespace must equal argparse's; for the lines that are not plain (an
abbreviation, an attached value, a bad value ...) it must step aside, so
argparse's answer, and its error wording, stay the only ones.
"""

from __future__ import annotations

import shlex

import pytest

from engine.cli import build_parser
from engine.cli.fastrun import parse_run

PLAIN = [
    "lab true",
    "--rm lab true",
    "--rm -m 64m --pids-limit 100 lab true",
    "-it lab bash",
    "-dit --name web lab sleep 9",
    "-d --rm --name=web -h box --init lab sleep 9",
    "-e A=1 -e B=2 -w /tmp -u 1000:1000 lab env",
    "-v /tmp:/mnt:ro -l app=web -l tier lab true",
    "-m 0 --memory-swap 1g --pids-limit 0 --cpus 0.5 lab true",
    "--memory=64m --cpus=1 lab true",
    "--network host --pid host --ipc host --uts host --userns private lab true",
    "--net none --timens --clock-offset monotonic=5 lab true",
    "--security-opt seccomp=unconfined --security-opt no-new-privileges lab true",
    "--storage-opt size=1g lab true",
    "--pull always lab true",
    "--pull=never --rm lab true",
    "--explain --pause --lang zh lab true",
    "lab sh -c 'echo -n hi; exit 3'",
    "lab --rm -it true",
    "-i lab cat",
    "'' true",
    "-m 64m lab echo --ne",                 # after the image, a word for the command, never an abbreviation
    "-m 64m lab echo --n --c --=x",
]
NOT_PLAIN = [
    "",
    "--rm",
    "--help",
    "--mem 64m lab true",                   # an abbreviation: refused, as docker refuses it
    "-m64m lab true",                       # an attached value
    "-m abc lab true",                      # a bad value: argparse words the error
    "--pids-limit -1 lab true",             # a value that starts with -
    "--pids-limit x lab true",
    "--lang fr lab true",
    "--pull sometimes lab true",                # not a choice: argparse words the error
    "-l =x lab true",
    "--name",
    "-x lab true",
    "-- lab true",
    "lab -- true",
    "-itx lab true",
]


def _argparse(words: list[str]) -> dict:
    return vars(build_parser("run").parse_args(["run", *words]))


@pytest.mark.parametrize("line", PLAIN)
def test_a_plain_line_reads_as_argparse_reads_it(line):
    words = shlex.split(line)
    fast = parse_run(words)
    assert fast is not None, f"the fast path stepped aside for {line!r}"
    assert vars(fast) == _argparse(words)


@pytest.mark.parametrize("line", NOT_PLAIN)
def test_anything_else_goes_to_argparse(line):
    assert parse_run(shlex.split(line)) is None


@pytest.mark.parametrize("line", ["-m64m lab echo --ne", "-m 64m lab echo --ne"])
def test_words_after_the_image_go_to_the_command_on_either_path(line):
    """Both paths (the fast one and argparse, which -m64m takes) give the command
    its own words: argparse once refused `--ne` as ambiguous (--network, --net)."""
    assert _argparse(shlex.split(line))["command"] == ["echo", "--ne"]


def test_an_abbreviated_flag_is_refused_as_docker_refuses_it():
    with pytest.raises(SystemExit) as e:
        _argparse(["--mem", "64m", "lab", "true"])
    assert e.value.code == 125
