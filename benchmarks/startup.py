"""CLI start-up: CPU seconds (user + sys) of ``anyssl --help``, ``anyssl list``,
``anyssl train --help`` and ``anyssl --version``, each in a fresh process.

CPU time rather than wall time: it counts what the command costs whatever else runs on the
machine (``os.wait4`` reports the child's own usage). Median of ``--repeats`` runs, with the
registry listing cache warm (written by an earlier run) and cold (a fresh, empty
``$XDG_CACHE_HOME`` for each run: the first command after an install or an edit). Target: under
0.5 s for ``--help`` and ``list`` with a warm cache.

    .venv/bin/python benchmarks/startup.py                  # 7 runs each, ~1 min
    .venv/bin/python benchmarks/startup.py --quick          # 3 runs each
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import common_parser, markdown_table, median, save, setup

ROOT = Path(__file__).resolve().parents[1]
ANYSSL = str(Path(sys.executable).with_name("anyssl"))
COMMANDS: dict[str, list[str]] = {
    "anyssl --help": ["--help"],
    "anyssl list": ["list"],
    "anyssl train --help": ["train", "--help"],
    "anyssl --version": ["--version"],
}
TARGET_S = 0.5


def cpu_seconds(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """User + sys CPU seconds of one run of ``argv`` (and its exit code)."""
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, proc.returncode


def measure(args: list[str], repeats: int, cold: bool) -> dict[str, Any]:
    """Median CPU seconds of ``anyssl *args`` over ``repeats`` runs."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("ANYSSL_NO_CACHE", None)
    times: list[float] = []
    codes: set[int] = set()
    with tempfile.TemporaryDirectory() as warm_home:
        env["XDG_CACHE_HOME"] = warm_home
        if not cold:
            cpu_seconds([ANYSSL, "list"], env)  # writes the cache
        for _ in range(repeats):
            if cold:
                with tempfile.TemporaryDirectory() as fresh:
                    t, code = cpu_seconds([ANYSSL, *args], {**env, "XDG_CACHE_HOME": fresh})
            else:
                t, code = cpu_seconds([ANYSSL, *args], env)
            times.append(t)
            codes.add(code)
    return {"median_s": median(times), "runs_s": times, "exit_codes": sorted(codes)}


def main() -> None:
    p = common_parser(__doc__.split("\n\n")[0])
    p.add_argument("--label", default="after",
                   help="what the numbers are of, e.g. before or after (printed and saved)")
    args = p.parse_args()
    device = setup(args)
    repeats = args.repeats or (3 if args.quick else 7)
    rows, results = [], []
    for name, argv in COMMANDS.items():
        warm = measure(argv, repeats, cold=False)
        cold = measure(argv, repeats, cold=True)
        ok = warm["median_s"] < TARGET_S
        rows.append([name, warm["median_s"], cold["median_s"],
                     ",".join(map(str, warm["exit_codes"])), "yes" if ok else "no"])
        results.append({"command": name, "warm": warm, "cold": cold})
        print(f"  {args.label}: {name}: warm {warm['median_s']:.3f} s, "
              f"cold {cold['median_s']:.3f} s", flush=True)
    table = markdown_table(
        ["command", "CPU s (warm cache)", "CPU s (cold cache)", "exit", f"< {TARGET_S} s"], rows)
    save("startup", args, device, table, {"label": args.label, "rows": results},
         notes=[f"{args.label}: median of {repeats} runs, user + sys CPU seconds of the child"])


if __name__ == "__main__":
    main()
