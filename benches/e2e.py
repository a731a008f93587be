#!/usr/bin/env python3
"""End-to-end throughput of carload against plain SHA-256 of the same bytes, in one run.

Usage: python3 benches/e2e.py [--size-mib 1024] [--runs 5] [--files 100000] [--threads 1,2]

Builds carload (release), writes a random input file and a folder of small files under
$TMPDIR/carload-bench, reads them once to put them in the page cache, then for each measurement
takes the median of --runs runs and prints MB/s, the ratio to the SHA-256 baseline measured in
this same run, and the peak RSS of the carload process.
"""
import argparse, hashlib, os, resource, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    """Runs cmd, returns (seconds, peak RSS in MiB)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    err = p.stderr.read().decode()
    p.stderr.close()
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return dt, ru.ru_maxrss / 1024


def median_run(cmd, runs, before=None):
    times, rss = [], []
    for _ in range(runs):
        if before:
            before()
        dt, r = run(cmd)
        times.append(dt)
        rss.append(r)
    return statistics.median(times), max(rss)


def sha256_baseline(path, runs):
    def once():
        h = hashlib.sha256()
        t = time.perf_counter()
        with open(path, "rb", buffering=0) as f:
            while True:
                b = f.read(16 << 20)
                if not b:
                    break
                h.update(b)
        return time.perf_counter() - t
    return statistics.median(once() for _ in range(runs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "carload-bench"))
    a = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    exe = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "carload")
    os.makedirs(a.dir, exist_ok=True)
    data = os.path.join(a.dir, f"random-{a.size_mib}MiB.bin")
    if not os.path.exists(data) or os.path.getsize(data) != a.size_mib << 20:
        with open(data, "wb") as f:
            for _ in range(a.size_mib):
                f.write(os.urandom(1 << 20))
    small = os.path.join(a.dir, f"small-{a.files}")
    if not os.path.isdir(small):
        os.makedirs(small)
        for i in range(a.files):
            sub = os.path.join(small, f"d{i // 1000:03d}")
            os.makedirs(sub, exist_ok=True)
            with open(os.path.join(sub, f"f{i:06d}"), "wb") as f:
                f.write(os.urandom(4096))
    out = os.path.join(a.dir, "out.car")

    def rm_out():
        for p in (out, out + ".manifest"):
            if os.path.exists(p):
                os.remove(p)

    n = a.size_mib << 20
    base = sha256_baseline(data, a.runs)  # also warms the page cache
    base_mbs = n / base / 1e6
    print(f"machine: {os.cpu_count()} CPUs; input {a.size_mib} MiB random, {a.files} x 4 KiB files; median of {a.runs} runs")
    print(f"{'measurement':<44} {'MB/s':>9} {'x sha256':>9} {'peak RSS':>10}")
    print(f"{'plain SHA-256 of the bytes (baseline)':<44} {base_mbs:>9.0f} {1.0:>9.2f} {'-':>10}")
    for t in a.threads.split(","):
        th = ["--threads", t]
        dt, rss = median_run([exe, "commp", "--quiet", "--skip-car-validation", *th, data], a.runs)
        print(f"{f'carload commp ({t} thr)':<44} {n / dt / 1e6:>9.0f} {base / dt:>9.2f} {rss:>8.0f} MiB")
        dt, rss = median_run([exe, "prepare", "--quiet", *th, data, out], a.runs, rm_out)
        print(f"{f'carload prepare file -> CAR + commP ({t} thr)':<44} {n / dt / 1e6:>9.0f} {base / dt:>9.2f} {rss:>8.0f} MiB")
    nb = a.files * 4096
    dt, rss = median_run([exe, "prepare", "--quiet", "--aggregate", small, out], max(1, a.runs // 2), rm_out)
    print(f"{'prepare --aggregate of small files':<44} {nb / dt / 1e6:>9.0f} {'-':>9} {rss:>8.0f} MiB   ({a.files / dt:,.0f} files/s)")
    rm_out()


if __name__ == "__main__":
    main()
