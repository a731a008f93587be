#!/usr/bin/env python3
"""`carload prepare --aggregate` of many small files (issue #23, part 3), A/B against another
build, with the floors of the same files measured in the same rounds.

Usage: python3 benches/smallfiles.py [--small /tmp/carload-scale] [--files 100000]
                                     [--before /path/to/old/carload] [--runs 5]

Each round runs, in an order that alternates from round to round: `carload prepare --aggregate`
of the folder (CAR and manifest to /dev/shm, the previous ones deleted first so their pages are
not freed inside the run), the same with the --before build when given, and two floors of the
same files: `tar cf - DIR | cat` (open, stat and read every file, one process) and
`sha256sum` of every file (`find -print0 | xargs -0`: read and hash, one stream). Page cache
warm (one warm-up round). Per tool: median wall, CPU (user + sys), peak RSS (GNU time), files/s,
and the median of the per-round ratios of its wall time to each floor's, side by side; for the
before/after pair the median per-round ratio after/before. The CARs of both builds are compared
byte for byte (they must be identical).
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXE = os.path.join(ROOT, "target", "release", "carload")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scale import small_tree  # noqa: E402


def timed(cmd, shell=False):
    """(wall s, cpu s, peak RSS MiB) of cmd under GNU time; exits on failure."""
    out = tempfile.mktemp()
    t = time.perf_counter()
    if shell:
        cmd = ["/usr/bin/time", "-f", "%U %S %M", "-o", out, "sh", "-c", cmd]
    else:
        cmd = ["/usr/bin/time", "-f", "%U %S %M", "-o", out, *cmd]
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.decode()[-2000:]}")
    u, s, m = open(out).read().split()[-3:]
    os.unlink(out)
    return dt, float(u) + float(s), int(m) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", default="/tmp/carload-scale")
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--before", help="another carload binary to compare with (A/B)")
    ap.add_argument("--after", default=EXE, help="the carload binary measured (default: this tree's release build)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    src = small_tree(a.small, a.files)
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.mkdtemp()
    cars = {}

    def prepare(exe, tag):
        car = os.path.join(shm, f"carload-small-{tag}.car")
        for p in (car, car + ".manifest"):
            if os.path.exists(p):
                os.unlink(p)
        cars[tag] = car
        return [exe, "prepare", "--aggregate", src, car, "-q"]

    tools = {"carload (this)": lambda: (prepare(a.after, "after"), False)}
    if a.before:
        tools["carload (before)"] = lambda: (prepare(a.before, "before"), False)
    tools["tar | cat (read floor)"] = lambda: (f"tar cf - -C '{src}' . | cat > /dev/null", True)
    tools["sha256sum (hash floor)"] = lambda: (
        f"find '{src}' -type f -print0 | xargs -0 sha256sum > /dev/null", True)
    for make in tools.values():
        timed(*make())  # warm-up: page cache, binaries
    res = {k: [] for k in tools}
    for r in range(a.runs):
        order = list(tools) if r % 2 == 0 else list(reversed(tools))
        for k in order:
            res[k].append(timed(*tools[k]()))
    if a.before:
        same = all(subprocess.run(["cmp", "-s", cars["before"] + x, cars["after"] + x]).returncode == 0
                   for x in ("", ".manifest"))
    load = open("/proc/loadavg").read().split()[:3]
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(load)}; {a.files:,} files "
          f"x 4 KiB; medians of {a.runs} interleaved rounds")
    floors = [k for k in tools if "floor" in k]
    head = f"{'tool':<24} {'wall s':>7} {'CPU s':>6} {'peak MiB':>9} {'files/s':>8}"
    head += "".join(f" {'x ' + f.split()[0]:>12}" for f in floors)
    print(head)
    for k, runs in res.items():
        wall = statistics.median(t for t, _, _ in runs)
        line = (f"{k:<24} {wall:>7.2f} {statistics.median(c for _, c, _ in runs):>6.2f} "
                f"{max(m for _, _, m in runs):>9.0f} {a.files / wall:>8,.0f}")
        for f in floors:
            ratios = [t / g[0] for (t, _, _), g in zip(runs, res[f])]
            line += f" {statistics.median(ratios):>12.2f}"
        print(line)
    if a.before:
        ab = [t / b[0] for (t, _, _), b in zip(res["carload (this)"], res["carload (before)"])]
        cpu = [c / b[1] for (_, c, _), b in zip(res["carload (this)"], res["carload (before)"])]
        print(f"this / before: wall {statistics.median(ab):.2f}, CPU {statistics.median(cpu):.2f} "
              f"(medians of per-round ratios); CARs and manifests identical: {same}")
    for car in cars.values():
        for p in (car, car + ".manifest"):
            if os.path.exists(p):
                os.unlink(p)


if __name__ == "__main__":
    main()
