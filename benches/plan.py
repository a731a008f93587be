#!/usr/bin/env python3
"""`carload plan` of the 1,000,000-file tree against `gdu -n -p` (issue #23 part 4): wall, CPU,
peak RSS and bytes a file beyond 64 MiB, side by side with the ratios to gdu.

Usage: python3 benches/plan.py [--dir /tmp/carload-tui-bench] [--runs 5] [--before OLD_CARLOAD]
                               [--exe NEW_CARLOAD] [--files 1000000] [--folders 37000]

The tree is benches/tree.py's (built if missing: sparse files, ~160 MiB of inodes). Each round
runs every tool once, in an order that alternates between rounds, after one warm-up round (page
cache warm); the figures are medians over the rounds, and "x gdu" is the median of the per-round
ratios (the machine may be shared: ratios within a round are fairer than times across rounds).
With --before, an older binary runs in the same rounds (A/B interleaved) and the shipment files
the two write are compared byte for byte. Without --exe, target/release/carload is built and used.

Goals (#23): plan <= 1.0x gdu's wall time; peak RSS <= 64 MiB + 100 B a file.
Needs GNU time (/usr/bin/time) and gdu (apt-get install time gdu).
"""
import argparse, filecmp, os, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd):
    """(wall s, CPU s, peak RSS bytes) of cmd under GNU time; exits on failure."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as f:
        p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", f.name, *cmd],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if p.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.decode()[-2000:]}")
        wall, user, sys_, kib = f.read().split()[-4:]
    return float(wall), float(user) + float(sys_), int(kib) * 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/tmp/carload-tui-bench")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--before", help="an older carload binary, run in the same rounds")
    ap.add_argument("--exe", help="the carload binary to measure (default: build target/release/carload)")
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--folders", type=int, default=37_000)
    a = ap.parse_args()
    exe = a.exe
    if not exe:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--locked"], cwd=ROOT, check=True)
        exe = os.path.join(ROOT, "target", "release", "carload")
    subprocess.run([sys.executable, os.path.join(ROOT, "benches", "tree.py"), a.dir,
                    "--files", str(a.files), "--folders", str(a.folders)], check=True)
    tree = os.path.join(a.dir, "tree")
    work = tempfile.mkdtemp(prefix="carload-plan-bench-")
    out = {"new": os.path.join(work, "new.jsonl"), "before": os.path.join(work, "before.jsonl")}
    tools = {"carload plan": [exe, "plan", tree, "-o", out["new"], "--force", "-q"]}
    if a.before:
        tools["plan (before)"] = [a.before, "plan", tree, "-o", out["before"], "--force", "-q"]
    tools["gdu -n -p"] = ["gdu", "-n", "-p", tree]
    load = open("/proc/loadavg").read().split()[:3]
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(load)} at the start; "
          + open("/proc/meminfo").readline().strip())
    for cmd in tools.values():
        timed(cmd)  # warm-up
    res = {k: [] for k in tools}
    for r in range(a.runs):
        order = list(tools) if r % 2 == 0 else list(reversed(tools))
        for k in order:
            res[k].append(timed(tools[k]))
    load = open("/proc/loadavg").read().split()[:3]
    gdu = res["gdu -n -p"]
    print(f"\n{a.files:,} files in {a.folders:,} folders, medians of {a.runs} rounds "
          f"(load average {' '.join(load)} at the end):")
    print(f"{'tool':<15} {'wall s':>7} {'CPU s':>7} {'peak MiB':>9} {'B/file > 64 MiB':>16} "
          f"{'x gdu wall':>11} {'x gdu CPU':>10} {'x gdu RSS':>10}")
    for k, runs in res.items():
        med = lambda i: statistics.median(x[i] for x in runs)
        ratio = lambda i: statistics.median(x[i] / g[i] for x, g in zip(runs, gdu))
        peak = max(x[2] for x in runs)
        beyond = max(0, peak - (64 << 20)) / a.files
        print(f"{k:<15} {med(0):>7.2f} {med(1):>7.2f} {peak / 2**20:>9.0f} {beyond:>16.0f} "
              f"{ratio(0):>11.2f} {ratio(1):>10.2f} {ratio(2):>10.2f}")
    if a.before:
        ratio = lambda i: statistics.median(x[i] / b[i] for x, b in zip(res["carload plan"], res["plan (before)"]))
        print(f"\nnew / before (median of per-round ratios): wall {ratio(0):.2f}, CPU {ratio(1):.2f}, "
              f"peak RSS {ratio(2):.2f}")
        same = filecmp.cmp(out["new"], out["before"], shallow=False)
        print(f"shipment files {'byte-identical' if same else 'DIFFER'} "
              f"({os.path.getsize(out['new']):,} bytes)")
        if not same:
            sys.exit(1)
    goal = (64 << 20) + 100 * a.files
    peak = max(x[2] for x in res["carload plan"])
    print(f"\ngoals: wall <= 1.0x gdu; peak <= 64 MiB + 100 B/file = {goal / 2**20:.0f} MiB "
          f"(measured {peak / 2**20:.0f} MiB)")
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
