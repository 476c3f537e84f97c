"""What the load scripts share: the release binary, running it, a fresh work directory, and
percentiles. The scripts import it from their own directory (`benches/`)."""

import os
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
# NARVARO_BIN skips the build (e.g. the binary `cargo bench` just built in target/release).
BIN = pathlib.Path(os.environ.get("NARVARO_BIN", ROOT / "target" / "release" / "narvaro"))


def run(*args, **kw):
    """Runs `narvaro ARGS`; its output, or an exception when it fails."""
    return subprocess.run([str(BIN), *args], check=True, capture_output=True, text=True, **kw)


def fresh(name):
    """Builds the release binary (unless NARVARO_BIN is given) and returns an empty
    `target/bench-data/NAME` to work in."""
    if "NARVARO_BIN" not in os.environ:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    work = ROOT / "target" / "bench-data" / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    return work


def percentile(xs, p):
    """The p-th percentile (nearest rank) of xs; NaN when there are none."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))]
