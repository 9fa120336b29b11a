"""What the fleet benchmarks share: running a command, the peers' venv."""

import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV = HERE / ".venv" / "bin"


def run(argv, env, **kwargs):
    """Run argv from the repository; a failure ends the benchmark with the end of its output."""
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=REPO, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv[:4]))}... failed: {done.stdout[-800:]}{done.stderr[-800:]}")
    return done
