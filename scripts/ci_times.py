"""Turn a `.ci/run` log into Markdown: the time of each stage, and the slowest tests of every pytest run in it.

    python scripts/ci_times.py ci.log [--top 20] > table.md

Reads the stage lines `.ci/run` prints (`[ci] stage start: NAME`, `[ci] stage end: NAME: SECONDS s, rc RC`) and the
`slowest durations` section pytest prints with `--durations` (one line per test phase: `12.34s call  tests/…::name`).
A test's time is the sum of its phases; a session fixture's setup counts towards the first test that asked for it.
A run that never printed that section (killed, or hung after its last test) still has its per-test lines when pytest
ran with `-v -o console_output_style=times` (`tests/…::name PASSED 1m 15s`); those are used for its stage.
No third-party imports: it runs on the CI machine before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STAGE_START = re.compile(r"^\[ci\] stage start: (?P<name>.+)$")
STAGE_END = re.compile(r"^\[ci\] stage end: (?P<name>.+): (?P<seconds>\d+) s, rc (?P<rc>-?\d+)$")
TOTAL = re.compile(r"^\[ci\] total: (?P<seconds>\d+) s")
DURATION = re.compile(r"^(?P<seconds>\d+(?:\.\d+)?)s (?P<phase>setup|call|teardown)\s+(?P<test>\S.*)$")
SUMMARY = re.compile(r"^=+ (?P<text>.*\b(?:passed|failed|error|errors)\b.*) =+$")
VERBOSE = re.compile(r"^(?P<test>tests/\S+::\S+(?: \S+\])?) (?:PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (?P<time>.+)$")
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def verbose_seconds(text: str) -> float | None:
    """'1m 15s' / '11.785s' / '3.517ms' (pytest's `times` style) → seconds; None for anything else."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)\b", text)
    return sum(float(number) * UNITS[unit] for number, unit in parts) if parts else None


def parse(lines: list[str]) -> dict:
    """{"stages": [{name, seconds, rc, summary}], "tests": {(stage, test): {phase: s}}, "total": s | None}."""
    stages, tests, total, verbose = [], defaultdict(dict), None, defaultdict(dict)
    current, summary = "(before any stage)", None
    for raw in lines:
        line = ANSI.sub("", raw.rstrip("\n"))
        if m := STAGE_START.match(line):
            current, summary = m["name"], None
        elif m := STAGE_END.match(line):
            stages.append({"name": m["name"], "seconds": int(m["seconds"]), "rc": int(m["rc"]), "summary": summary})
        elif m := TOTAL.match(line):
            total = int(m["seconds"])
        elif m := DURATION.match(line):
            phases = tests[(current, m["test"].strip())]
            phases[m["phase"]] = phases.get(m["phase"], 0.0) + float(m["seconds"])
        elif m := SUMMARY.match(line):
            summary = m["text"]
        elif (m := VERBOSE.match(line)) and (seconds := verbose_seconds(m["time"])) is not None:
            verbose[current][m["test"]] = seconds
    for stage, times in verbose.items():  # only for stages whose run printed no durations section
        if not any(key[0] == stage for key in tests):
            for test, seconds in times.items():
                tests[(stage, test)] = {"test": seconds}
    return {"stages": stages, "tests": tests, "total": total}


def minutes(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def markdown(parsed: dict, top: int) -> str:
    out = ["| stage | seconds | min:s | rc | pytest |", "| --- | ---: | ---: | ---: | --- |"]
    for s in parsed["stages"]:
        out.append(f"| {s['name']} | {s['seconds']} | {minutes(s['seconds'])} | {s['rc']} | {s['summary'] or ''} |")
    total = parsed["total"] if parsed["total"] is not None else sum(s["seconds"] for s in parsed["stages"])
    out.append(f"| **total** | **{total}** | **{minutes(total)}** | | |")
    rows = sorted(parsed["tests"].items(), key=lambda item: -sum(item[1].values()))[:top]
    out += ["", f"The {len(rows)} slowest tests (setup + call + teardown):", ""]
    out += ["| test | stage | setup s | call s | teardown s | total s |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for (stage, test), phases in rows:
        cells = [f"{phases[p]:.1f}" if p in phases else "" for p in ("setup", "call", "teardown")]
        out.append(f"| `{test}` | {stage} | {' | '.join(cells)} | {sum(phases.values()):.1f} |")
    by_stage = defaultdict(float)
    for (stage, _), phases in parsed["tests"].items():
        by_stage[stage] += sum(phases.values())
    out += ["", "Seconds in tests per stage (listed durations only; short phases are hidden by --durations-min):", ""]
    out += [f"- {stage}: {seconds:.0f} s" for stage, seconds in by_stage.items()]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("log", type=Path, help="a log of `.ci/run` (stdout and stderr)")
    parser.add_argument("--top", type=int, default=20, help="how many of the slowest tests to list (default 20)")
    args = parser.parse_args(argv)
    text = args.log.read_text(encoding="utf-8", errors="replace").splitlines()
    parsed = parse(text)
    if not parsed["stages"]:
        print(f"error: {args.log}: no `[ci] stage end:` lines; is it a log of .ci/run?", file=sys.stderr)
        return 2
    sys.stdout.write(markdown(parsed, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
