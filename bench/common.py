"""What the benchmarks share: running a command, the peers' venv, the plots' set-up."""

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


def write_csv(path, rows, fields=None):
    """rows (dicts) as a CSV file with a header: fields, else the first row's keys."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def pyplot():
    """matplotlib's pyplot, drawing into files (the bench venv has matplotlib; no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def paired_bars(axes, labels, ours, theirs, names=(None, None)):
    """Two bars for each label on axes: ours on the left, the peer's on the right."""
    positions = range(len(labels))
    width = 0.38
    axes.bar([p - width / 2 for p in positions], ours, width, label=names[0])
    axes.bar([p + width / 2 for p in positions], theirs, width, label=names[1])
    axes.set_xticks(list(positions), labels)
    if names[0]:
        axes.legend()
