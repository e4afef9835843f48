"""Run a benchmark's script in a fresh Python process, so its peak resident memory is its own
(not the test runner's), and read the JSON line it prints last."""

from __future__ import annotations

import json
import subprocess
import sys


def run_script(script: str) -> dict:
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
