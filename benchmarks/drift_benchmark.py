"""Benchmark: Vigil's drift check against Evidently's DataDriftPreset and a plain scipy loop.

    .venv/bin/python benchmarks/drift_benchmark.py [--rows 10000,100000,1000000]
                  [--reference-rows N] [--evidently-max-rows 100000] [--repeat 3]

For each size, a current frame of that many rows and a reference frame of as many (or of
--reference-rows) rows, with 25 features (20 numerical,
5 categorical; some drifted, some with missing values, two of few distinct values) are generated
from a fixed seed. Each contender runs in a fresh subprocess on the same data and reports:
- wall-clock and CPU time (all threads), best of --repeat in-process runs (Evidently runs once);
  the CPU time shows the work done when other processes share the machine;
- peak resident memory above the process's memory once the input frames exist (the kernel's
  high-water mark, reset just before the runs).
Evidently is skipped above --evidently-max-rows (it takes minutes at 1M rows). The per-feature
methods and verdicts of all contenders must agree; the exit status is 1 when they do not.
Linux with glibc only (reads /proc/self, calls malloc_trim).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NUMERICAL = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
CONTENDERS = ("vigil", "scipy", "evidently")


def make_frames(
    rows: int, reference_rows: int | None = None, seed: int = 7
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current data; in current, features 0-5 shift, 6-7 widen, cat_0-1 reweigh."""
    reference = _frame(reference_rows or rows, np.random.default_rng(seed), drift=False)
    return reference, _frame(rows, np.random.default_rng(seed + 1), drift=True)


def _frame(rows: int, rng: np.random.Generator, drift: bool) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {}
    for i, name in enumerate(NUMERICAL):
        shift = 0.3 if drift and i < 6 else 0.0
        scale = 1.5 if drift and i in (6, 7) else 1.0
        if i == 18:
            columns[name] = (rng.random(rows) < 0.3).astype(np.int64)
        elif i == 19:
            columns[name] = rng.integers(0, 4, rows)
        elif i % 3 == 0:
            columns[name] = rng.lognormal(shift, scale * 0.5, rows)
        else:
            columns[name] = rng.normal(10 * i + shift, scale, rows)
        if i in (4, 9):
            columns[name][rng.random(rows) < 0.05] = np.nan
    for i, name in enumerate(CATEGORICAL):
        labels = np.array([f"{name}_level_{j}" for j in range(3 + 6 * i)], dtype=object)
        weights = np.linspace(1.0, 2.0, labels.size)
        if drift and i < 2:
            weights = weights[::-1]
        values = labels[rng.choice(labels.size, rows, p=weights / weights.sum())]
        if i == 4:
            values[rng.random(rows) < 0.05] = None
        columns[name] = values
    return pd.DataFrame(columns)


# --- the contenders, each returning {feature: (method, drifted)} ---------------------------------


def run_vigil(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, tuple[str, bool]]:
    from monitoring.metrics.drift import compute_drift

    # the per-feature verdicts compared here do not depend on the dataset's drift share
    result = compute_drift(reference, current, NUMERICAL, CATEGORICAL, drift_share=0.5)
    return {f.feature: (f.method, f.drifted) for f in result.features}


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, tuple[str, bool]]:
    from monitoring.metrics.evidently_report import evidently_verdicts

    verdicts = evidently_verdicts(reference, current, NUMERICAL, CATEGORICAL)
    return {feature: (method, drifted) for feature, (method, _, drifted) in verdicts.items()}


def run_scipy(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, tuple[str, bool]]:
    """The obvious implementation: per column, pandas to drop and count, scipy to test."""
    from scipy import stats
    from scipy.spatial import distance

    verdicts = {}
    for name in NUMERICAL + CATEGORICAL:
        ref = reference[name].replace([np.inf, -np.inf], np.nan).dropna()
        cur = current[name].replace([np.inf, -np.inf], np.nan).dropna()
        distinct = pd.concat([ref, cur]).nunique()
        few = name in CATEGORICAL or distinct <= 5
        if len(ref) <= 1000 and not few:
            verdicts[name] = ("ks", stats.ks_2samp(ref, cur).pvalue <= 0.05)
            continue
        if len(ref) > 1000 and not few:
            score = stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
            verdicts[name] = ("wasserstein", score >= 0.1)
            continue
        counts = pd.concat([ref.value_counts(), cur.value_counts()], axis=1).fillna(0)
        ref_counts, cur_counts = counts.iloc[:, 0].to_numpy(), counts.iloc[:, 1].to_numpy()
        if len(ref) > 1000:
            score = distance.jensenshannon(ref_counts / len(ref), cur_counts / len(cur))
            verdicts[name] = ("jensenshannon", score >= 0.1)
        elif distinct > 2:
            expected = ref_counts * len(cur) / len(ref)
            verdicts[name] = ("chisquare", stats.chisquare(cur_counts, expected).pvalue < 0.05)
        else:
            first = min(counts.index)
            p1, p2 = (
                1 - counts.loc[first].iloc[0] / len(ref),
                1 - counts.loc[first].iloc[1] / len(cur),
            )
            pooled = (p1 * len(ref) + p2 * len(cur)) / (len(ref) + len(cur))
            z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / len(ref) + 1 / len(cur)))
            verdicts[name] = ("z", 2 * (1 - stats.norm.cdf(abs(z))) < 0.05)
    return verdicts


RUNNERS = {"vigil": run_vigil, "scipy": run_scipy, "evidently": run_evidently}


# --- one measurement, in a fresh process ----------------------------------------------------------


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(contender: str, rows: int, reference_rows: int | None, repeat: int) -> dict:
    runner = RUNNERS[contender]
    warm_reference, warm_current = make_frames(200, seed=1)
    runner(warm_reference, warm_current)  # imports and lazy initialisation, off the clock
    del warm_reference, warm_current
    reference, current = make_frames(rows, reference_rows)
    gc.collect()
    # hand the generator's freed scratch memory back to the OS, or the runs would reuse it unseen
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    baseline_kb = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS high-water mark
    seconds, cpu_seconds = [], []
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        verdicts = runner(reference, current)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    peak_mb = (_status_kb("VmHWM") - baseline_kb) / 1024
    verdicts = {
        feature: [str(method), bool(drifted)] for feature, (method, drifted) in verdicts.items()
    }
    return {
        "seconds": min(seconds),
        "cpu_seconds": min(cpu_seconds),
        "peak_mb": peak_mb,
        "verdicts": verdicts,
    }


def run_in_subprocess(contender: str, rows: int, reference_rows: int | None, repeat: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        contender,
        "--rows",
        str(rows),
        "--repeat",
        str(repeat),
        *(["--reference-rows", str(reference_rows)] if reference_rows else []),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{contender} at {rows} rows failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the command ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000,1000000", help="comma-separated sizes")
    parser.add_argument("--reference-rows", type=int, help="reference size (default: each size)")
    parser.add_argument("--evidently-max-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (Evidently: 1)")
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(size) for size in args.rows.split(",")]
    if args.worker:
        print(json.dumps(measure(args.worker, sizes[0], args.reference_rows, args.repeat)))
        return 0

    reference_rows = f"{args.reference_rows:,}" if args.reference_rows else "current rows"
    print(
        f"drift benchmark: 25 features (20 numerical, 5 categorical), reference rows ="
        f" {reference_rows}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start"
    )
    results: dict[int, dict[str, dict | None]] = {}
    for rows in sizes:
        results[rows] = {}
        for contender in CONTENDERS:
            if contender == "evidently" and rows > args.evidently_max_rows:
                print(
                    f"  {rows:>9,} rows  evidently: skipped (above --evidently-max-rows {args.evidently_max_rows:,})"
                )
                results[rows][contender] = None
                continue
            repeat = 1 if contender == "evidently" else args.repeat
            results[rows][contender] = outcome = run_in_subprocess(
                contender, rows, args.reference_rows, repeat
            )
            print(
                f"  {rows:>9,} rows  {contender}: {outcome['seconds']:.2f} s "
                f"({outcome['cpu_seconds']:.2f} s CPU), {outcome['peak_mb']:.0f} MB,"
                f" load average {os.getloadavg()[0]:.1f}"
            )
    return report(results)


def report(results: dict[int, dict[str, dict | None]]) -> int:
    def time_cell(outcome: dict | None) -> str:
        if outcome is None:
            return "skipped"
        return f"{outcome['seconds']:.2f} s ({outcome['cpu_seconds']:.2f} s CPU)"

    def memory_cell(outcome: dict | None) -> str:
        return "skipped" if outcome is None else f"{outcome['peak_mb']:.0f} MB"

    header = [
        "rows",
        "Vigil time",
        "Vigil peak mem",
        "scipy loop time",
        "scipy loop peak mem",
        "Evidently time",
        "Evidently peak mem",
        "Vigil speed-up",
        "verdicts",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    all_agree = True
    for rows, outcomes in results.items():
        vigil, scipy_loop, evidently = outcomes["vigil"], outcomes["scipy"], outcomes["evidently"]
        baseline = evidently or scipy_loop
        speed_up = f"{baseline['seconds'] / vigil['seconds']:.0f}x vs {'Evidently' if evidently else 'scipy'}"
        disagreements = [
            f"{feature}: vigil {verdict} vs {name} {other['verdicts'][feature]}"
            for name, other in (("scipy", scipy_loop), ("evidently", evidently))
            if other is not None
            for feature, verdict in vigil["verdicts"].items()
            if other["verdicts"][feature] != verdict
        ]
        all_agree &= not disagreements
        drifted = sum(drifted for _, drifted in vigil["verdicts"].values())
        compared = "scipy + Evidently" if evidently else "scipy"
        agreement = f"{drifted}/25 drifted, same as {compared}" if not disagreements else "DIFFER"
        lines.append(
            f"| {rows:,} | {time_cell(vigil)} | {memory_cell(vigil)} | "
            f"{time_cell(scipy_loop)} | {memory_cell(scipy_loop)} | "
            f"{time_cell(evidently)} | {memory_cell(evidently)} | {speed_up} | {agreement} |"
        )
        for disagreement in disagreements:
            print("  verdicts differ:", disagreement)
    print()
    print("\n".join(lines))
    return 0 if all_agree else 1


if __name__ == "__main__":
    sys.exit(main())
