#!/usr/bin/env python3
"""End-to-end throughput of carload against plain SHA-256 of the same bytes, in one run.

Usage: python3 benches/e2e.py [--sizes-mib 64,1024] [--runs 5] [--files 100000] [--threads 1,2]

Builds carload (release), writes random input files and a folder of small files under
$TMPDIR/carload-bench, reads each once to put it in the page cache, then for each measurement
takes the median of --runs runs and prints MB/s, the ratio to the SHA-256 baseline measured in
this same run on the same bytes, and the peak RSS of the carload process. A `dd` of the same
bytes to a new file next to the CAR shows what writing alone costs on this machine. CARs are
written to --out-dir (default /dev/shm when present, so the figures measure carload rather than
the disk).
"""
import argparse, hashlib, os, resource, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


TIME = "/usr/bin/time"  # GNU time (Debian package "time") reports the child's own peak RSS


def run(cmd):
    """Runs cmd under GNU time; returns (seconds, peak RSS of carload in MiB, or nan)."""
    rss_path = os.path.join(tempfile.gettempdir(), "carload-bench-rss.txt")
    full = [TIME, "-f", "%M", "-o", rss_path, *cmd] if os.path.exists(TIME) else cmd
    t = time.perf_counter()
    p = subprocess.run(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.decode()}")
    try:
        rss = int(open(rss_path).read().split()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        rss = float("nan")
    return dt, rss


def median_run(cmd, runs, before=None):
    times, rss = [], []
    for _ in range(runs):
        if before:
            before()
        dt, r = run(cmd)
        times.append(dt)
        rss.append(r)
    return statistics.median(times), max(rss)


def warm(path):
    """Reads a file so it is in the page cache (this VM evicts it between runs otherwise)."""
    with open(path, "rb", buffering=0) as f:
        while f.read(16 << 20):
            pass


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
    ap.add_argument("--sizes-mib", default="1024")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "carload-bench"))
    ap.add_argument("--out-dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    a = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    exe = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "carload")
    os.makedirs(a.dir, exist_ok=True)
    inputs = []
    for mib in [int(x) for x in a.sizes_mib.split(",") if x]:
        data = os.path.join(a.dir, f"random-{mib}MiB.bin")
        if not os.path.exists(data) or os.path.getsize(data) != mib << 20:
            with open(data, "wb") as f:
                for _ in range(mib):
                    f.write(os.urandom(1 << 20))
        inputs.append((mib, data))
    small = os.path.join(a.dir, f"small-{a.files}")
    if a.files and not os.path.isdir(small):
        os.makedirs(small)
        for i in range(a.files):
            sub = os.path.join(small, f"d{i // 1000:03d}")
            os.makedirs(sub, exist_ok=True)
            with open(os.path.join(sub, f"f{i:06d}"), "wb") as f:
                f.write(os.urandom(4096))
    out = os.path.join(a.out_dir or a.dir, "carload-bench-out.car")

    def rm_out():
        for p in (out, out + ".manifest"):
            if os.path.exists(p):
                os.remove(p)

    print(f"machine: {os.cpu_count()} CPUs; median of {a.runs} runs; CARs written to {os.path.dirname(out)}")
    print(f"{'measurement':<52} {'MB/s':>9} {'x sha256':>9} {'peak RSS':>10}")
    for mib, data in inputs:
        n = mib << 20
        base = sha256_baseline(data, a.runs)  # also warms the page cache
        print(f"{f'[{mib} MiB] plain SHA-256 of the bytes (baseline)':<52} {n / base / 1e6:>9.0f} {1.0:>9.2f} {'-':>10}")
        # What writing that many bytes to a new file in the output folder costs here (page
        # allocation and copy in the kernel): the floor under `prepare`, whatever it computes.
        dt, _ = median_run(["dd", f"if={data}", f"of={out}", "bs=8M", "status=none"], a.runs, lambda: (rm_out(), warm(data)))
        print(f"{f'[{mib} MiB] dd of the bytes to a new file (write floor)':<52} {n / dt / 1e6:>9.0f} {base / dt:>9.2f} {'-':>10}")
        for t in a.threads.split(","):
            th = ["--threads", t]
            dt, rss = median_run([exe, "commp", "--json", "--skip-car-validation", *th, data], a.runs, lambda: warm(data))
            print(f"{f'[{mib} MiB] carload commp ({t} thr)':<52} {n / dt / 1e6:>9.0f} {base / dt:>9.2f} {rss:>6.0f} MiB")
            dt, rss = median_run([exe, "prepare", "--json", *th, data, out], a.runs, lambda: (rm_out(), warm(data)))
            print(f"{f'[{mib} MiB] carload prepare file -> CAR + commP ({t} thr)':<52} {n / dt / 1e6:>9.0f} {base / dt:>9.2f} {rss:>6.0f} MiB")
        rm_out()
    if a.files:
        nb = a.files * 4096
        for d, _, names in os.walk(small):  # page cache, as for the other inputs
            for n in names:
                with open(os.path.join(d, n), "rb") as f:
                    f.read()
        dt, rss = median_run([exe, "prepare", "--json", "--aggregate", small, out], max(1, a.runs // 2), rm_out)
        print(f"{f'prepare --aggregate of {a.files} x 4 KiB files':<52} {nb / dt / 1e6:>9.0f} {'-':>9} {rss:>6.0f} MiB   ({a.files / dt:,.0f} files/s)")
    rm_out()


if __name__ == "__main__":
    main()
