"""Run one measurement in a fresh interpreter, for the scripts that report peak memory.

A fresh process per measurement keeps one run's allocations out of the next one's high-water
mark, and glibc's mmap threshold fixed at 64 KiB makes freed tensors go back to the OS at once,
so the peak resident size follows live memory. The child prints one ``RESULT {json}`` line.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

#: glibc serves allocations over this many bytes with their own mmap, returned when freed.
MMAP_THRESHOLD = 65536
PREFIX = "RESULT "


def spawn(cmd: list[str], what: str) -> dict[str, Any]:
    """Run ``cmd`` (a child interpreter) and return the JSON of its last ``RESULT`` line; stop
    the benchmark, with the child's output, when it fails."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(MMAP_THRESHOLD))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(PREFIX)]
    if proc.returncode or not lines:
        raise SystemExit(f"{what} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len(PREFIX):])
    return result


def emit(result: dict[str, Any]) -> None:
    """The child's side: print ``result`` as the ``RESULT`` line ``spawn`` reads."""
    print(PREFIX + json.dumps(result), flush=True)


def proc_status(key: str) -> int:
    """A ``/proc/self/status`` entry (kB lines, e.g. ``VmHWM``, ``VmRSS``) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {key}")


def reset_peak() -> None:
    """Start the process's high-water mark (``VmHWM``) again from its current size."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
