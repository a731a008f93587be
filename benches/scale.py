#!/usr/bin/env python3
"""Petabyte-scale figures of issue #13, side by side in one run (medians of --runs rounds).

Usage: python3 benches/scale.py [--dir /tmp/carload-tui-bench] [--small /tmp/carload-scale] [--runs 3]

1. `carload plan` of the 1,000,000-file tree (benches/tree.py, built if missing) against
   `gdu -n -p` and `ncdu -0 -o /dev/null` of the same tree: wall time and peak RSS, tools in
   alternating order per round after one warm-up round; ratios to gdu per round.
2. Peak RSS of `carload build` of one batch of 100,000 4 KiB files and of one batch of the
   1,000,000-file tree (planned with 64 GiB sectors so each is one batch); the per-entry slope
   between them and the 8,000,000-entry figure extrapolated from it (stated as such).
3. `carload prepare --aggregate` of the 100,000 x 4 KiB folder in page cache: files per second.

Needs GNU time (/usr/bin/time, Debian package time), gdu and ncdu (apt-get install gdu ncdu).
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXE = os.path.join(ROOT, "target", "release", "carload")


def timed(cmd, cwd=None):
    """(wall seconds, peak RSS MiB) of cmd under GNU time; exits on failure."""
    rss_file = tempfile.mktemp()
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file, *cmd], cwd=cwd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.decode()[-2000:]}")
    rss = int(open(rss_file).read().split()[-1]) / 1024
    os.unlink(rss_file)
    return dt, rss


def small_tree(path, files=100_000):
    marker = os.path.join(path, ".complete")
    if os.path.exists(marker):
        return os.path.join(path, "src")
    rnd = open("/dev/urandom", "rb")
    for d in range(files // 1000):
        sub = os.path.join(path, "src", f"d{d:03}")
        os.makedirs(sub, exist_ok=True)
        for f in range(1000):
            with open(os.path.join(sub, f"f{f:04}.bin"), "wb") as fh:
                fh.write(rnd.read(4096))
    open(marker, "w").close()
    return os.path.join(path, "src")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/carload-tui-bench")
    ap.add_argument("--small", default="/tmp/carload-scale")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "benches", "tree.py"), a.dir], check=True)
    tree = os.path.join(a.dir, "tree")
    small = small_tree(a.small)
    work = tempfile.mkdtemp(prefix="carload-scale-")
    print(f"machine: {os.cpu_count()} cores; " + open("/proc/meminfo").readline().strip())

    # 1. plan vs gdu vs ncdu
    tools = {
        "carload plan": [EXE, "plan", tree, "-o", os.path.join(work, "p.jsonl"), "--force", "-q"],
        "gdu -n": ["gdu", "-n", "-p", tree],
        "ncdu -o": ["ncdu", "-0", "-o", "/dev/null", tree],
    }
    for cmd in tools.values():
        timed(cmd)  # warm-up
    res = {k: [] for k in tools}
    for r in range(a.runs):
        order = list(tools) if r % 2 == 0 else list(reversed(tools))
        for k in order:
            res[k].append(timed(tools[k]))
    print(f"\n1,000,000-file tree, medians of {a.runs}:")
    print(f"{'tool':<14} {'wall s':>8} {'peak MiB':>9} {'x gdu (median of per-round ratios)':>36}")
    for k, runs in res.items():
        ratios = [t / g[0] for (t, _), g in zip(runs, res["gdu -n"])]
        print(f"{k:<14} {statistics.median(t for t, _ in runs):>8.2f} {max(m for _, m in runs):>9.0f} "
              f"{statistics.median(ratios):>36.2f}")

    # 2. batch build memory
    points = []
    for name, src in [("100,000 x 4 KiB", small), ("1,000,000-file tree", tree)]:
        ship = os.path.join(work, "one.jsonl")
        subprocess.run([EXE, "plan", src, "--sector", "64GiB", "-o", ship, "--force", "-q"], check=True)
        batches = sum(1 for _ in open(ship)) - 1
        with open(ship) as f:
            next(f)
            files = len(json.loads(next(f))["files"])
        rss = []
        for _ in range(a.runs):
            out = os.path.join(work, "out")
            subprocess.run(["rm", "-rf", out])
            dt, m = timed([EXE, "build", ship, "--out", out, "--batch-index", "0", "-q"])
            rss.append(m)
        points.append((files, statistics.median(rss)))
        print(f"\nbuild of one batch of {name}: {files:,} entries ({batches} batch), peak RSS "
              f"{statistics.median(rss):.0f} MiB (median of {a.runs})")
    (n1, m1), (n2, m2) = points
    slope = (m2 - m1) * 2**20 / (n2 - n1)
    at8m = m1 + slope * (8_000_000 - n1) / 2**20
    print(f"slope {slope:.0f} bytes/entry; extrapolated to 8,000,000 entries: {at8m:.0f} MiB "
          f"(target 128 MiB + 160 B/entry = {128 + 160 * 8e6 / 2**20:.0f} MiB)")

    # 3. prepare --aggregate files/s
    car = os.path.join("/dev/shm" if os.path.isdir("/dev/shm") else work, "agg.car")
    times = []
    timed([EXE, "prepare", "--aggregate", small, car, "--force", "-q"])  # warm the page cache
    for _ in range(a.runs):
        dt, _ = timed([EXE, "prepare", "--aggregate", small, car, "--force", "-q"])
        times.append(dt)
    for p in (car, car + ".manifest"):
        if os.path.exists(p):
            os.unlink(p)
    t = statistics.median(times)
    print(f"\nprepare --aggregate of 100,000 x 4 KiB: {t:.2f} s = {100_000 / t:,.0f} files/s (median of {a.runs})")
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
