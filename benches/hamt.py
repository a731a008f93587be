#!/usr/bin/env python3
"""HAMT folder builds: `carload car` of one flat folder of N small files under each profile.

Usage: python3 benches/hamt.py [--files 100000] [--runs 5] [--dir DIR] [--distinct]

Creates DIR/flat-N with N files of 8 to 40 bytes named `file-<i>.txt` (kept between runs; 33
distinct contents, or with --distinct DIR/distinct-N with every content distinct, so every
leaf is a CID of its own for the importer to remember), then
runs, in turn and --runs times, `carload car --quiet --profile P flat /dev/shm/…car` for
P = pow (one basic folder block: the baseline), unixfs-v0-2015 (HAMT by links) and
unixfs-v1-2025 (HAMT by block size), each under GNU time. Prints per profile the median wall
time, its ratio to pow's in the same run, the median peak RSS, and the CAR size and root type.
Runs alternate so every profile sees the same load. Needs a release build.
"""
import argparse, os, statistics, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "carload")
PROFILES = ["pow", "unixfs-v0-2015", "unixfs-v1-2025"]


def make_tree(path, n, distinct):
    marker = os.path.join(path, f".complete-{n}")
    if os.path.exists(marker):
        return
    os.makedirs(path, exist_ok=True)
    for i in range(n):
        with open(os.path.join(path, f"file-{i}.txt"), "w") as f:
            f.write((f"{i}:" if distinct else "") + "x" * (8 + i % 33))
    open(marker, "w").close()


def run(profile, src, out):
    cmd = ["/usr/bin/time", "-f", "%e %M", BIN, "car", "--quiet", "--force", "--profile", profile, src, out]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {p.stderr.strip()}")
    wall, rss_kib = p.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss_kib) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", default="/tmp/carload-hamt-bench")
    ap.add_argument("--distinct", action="store_true", help="every file's content distinct")
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    src = os.path.join(a.dir, f"{'distinct' if a.distinct else 'flat'}-{a.files}")
    make_tree(src, a.files, a.distinct)
    # Dot-files are skipped by every profile, so the marker is not part of the DAG.
    out = f"/dev/shm/carload-hamt-bench.car"
    times = {p: [] for p in PROFILES}
    rss = {p: [] for p in PROFILES}
    facts = {}
    for _ in range(a.runs):
        for p in PROFILES:
            t, m = run(p, src, out)
            times[p].append(t)
            rss[p].append(m)
            data = open(out, "rb").read()
            facts[p] = (len(data),)
    os.unlink(out)
    base = statistics.median(times["pow"])
    print(f"{a.files} files ({'distinct' if a.distinct else '33 distinct'} contents), {a.runs} runs (medians)")
    print(f"{'profile':<16} {'wall s':>8} {'× pow':>6} {'RSS MiB':>8} {'CAR bytes':>12}")
    for p in PROFILES:
        w = statistics.median(times[p])
        print(f"{p:<16} {w:>8.2f} {w / base:>6.2f} {statistics.median(rss[p]):>8.1f} {facts[p][0]:>12}")


if __name__ == "__main__":
    main()
