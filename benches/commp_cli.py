#!/usr/bin/env python3
"""`carload commp` and `carload prepare` against OpenSSL SHA-256 and `dd` of the same bytes,
A/B against an older binary, rounds interleaved (this machine is shared: medians of per-round
ratios, and CPU time next to wall time).

Usage: python3 benches/commp_cli.py [--mib 1024] [--rounds 7] [--threads 2] [--before BIN]
                                     [--after BIN] [--dir /dev/shm]

Each round runs, in this order: `openssl dgst -sha256` of the input (the baseline of the
round), `dd` of the input to a new file, then for each binary `commp` and `prepare` of the input
(CAR to --dir, deleted after each run). Every figure is the median over rounds of the run's
wall time, CPU time (user + system, of the process and its threads) and its ratio to the
round's baseline. The issue's figures of merit are printed last:
  commp  speed:  openssl wall / commp wall        (goal >= 0.93)
  prepare wall:  prepare wall / (commp wall + dd wall)   (goal <= 0.90)
"""
import argparse, os, resource, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    """Runs cmd; returns (wall seconds, CPU seconds of the child)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.read().decode()}")
    return dt, ru.ru_utime + ru.ru_stime


def warm(path):
    with open(path, "rb", buffering=0) as f:
        while f.read(16 << 20):
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", default="2")
    ap.add_argument("--before", help="older carload binary (A); omitted: only --after")
    ap.add_argument("--after", default=os.path.join(ROOT, "target", "release", "carload"))
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else "/tmp")
    a = ap.parse_args()

    data = os.path.join(a.dir, f"commp-cli-{a.mib}MiB.bin")
    if not os.path.exists(data) or os.path.getsize(data) != a.mib << 20:
        with open(data, "wb") as f:
            for _ in range(a.mib):
                f.write(os.urandom(1 << 20))
    out = os.path.join(a.dir, "commp-cli-out.car")

    def rm_out():
        if os.path.exists(out):
            os.remove(out)

    bins = [("before", a.before), ("after", a.after)] if a.before else [("after", a.after)]
    th = ["--threads", a.threads]
    rows = {}  # name -> list of (wall, cpu, wall / baseline wall)

    def record(name, wall, cpu, base):
        rows.setdefault(name, []).append((wall, cpu, wall / base))

    for r in range(a.rounds):
        warm(data)
        base, cpu = run(["openssl", "dgst", "-sha256", data])
        record("openssl dgst -sha256", base, cpu, base)
        rm_out()
        wall, cpu = run(["dd", f"if={data}", f"of={out}", "bs=8M", "status=none"])
        record("dd to a new file", wall, cpu, base)
        rm_out()
        # Alternate which binary goes first, so neither always runs right after dd.
        order = bins if r % 2 == 0 else bins[::-1]
        for label, exe in order:
            warm(data)
            wall, cpu = run([exe, "commp", "--json", "--skip-car-validation", *th, data])
            record(f"commp ({label})", wall, cpu, base)
            rm_out()
            wall, cpu = run([exe, "prepare", "--json", *th, data, out])
            record(f"prepare ({label})", wall, cpu, base)
            rm_out()
    os.remove(data)

    n = a.mib << 20
    print(f"{a.mib} MiB random input in {a.dir}, {a.threads} threads, {a.rounds} rounds interleaved, "
          f"medians; load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'run':<24} {'wall s':>8} {'min wall':>9} {'CPU s':>8} {'MB/s':>7} {'wall / openssl':>15}")
    med = {}
    for name, v in rows.items():
        wall = statistics.median(x[0] for x in v)
        cpu = statistics.median(x[1] for x in v)
        ratio = statistics.median(x[2] for x in v)
        med[name] = (wall, cpu, ratio)
        least = min(x[0] for x in v)
        print(f"{name:<24} {wall:>8.3f} {least:>9.3f} {cpu:>8.3f} {n / wall / 1e6:>7.0f} {ratio:>15.3f}")
    print()
    print(f"{'figure of merit':<44} " + " ".join(f"{label:>8}" for label, _ in bins) + "    goal")
    dd = rows["dd to a new file"]
    base = rows["openssl dgst -sha256"]
    speed = [statistics.median(b[0] / c[0] for b, c in zip(base, rows[f"commp ({l})"])) for l, _ in bins]
    print(f"{'commp speed / openssl speed (wall)':<44} " + " ".join(f"{x:>8.3f}" for x in speed) + "  >= 0.93")
    cpu = [statistics.median(b[1] / c[1] for b, c in zip(base, rows[f"commp ({l})"])) for l, _ in bins]
    print(f"{'openssl CPU / commp CPU':<44} " + " ".join(f"{x:>8.3f}" for x in cpu))
    prep = [
        statistics.median(p[0] / (c[0] + d[0]) for p, c, d in zip(rows[f"prepare ({l})"], rows[f"commp ({l})"], dd))
        for l, _ in bins
    ]
    print(f"{'prepare wall / (commp wall + dd wall)':<44} " + " ".join(f"{x:>8.3f}" for x in prep) + "  <= 0.90")
    pcpu = [statistics.median(p[1] for p in rows[f"prepare ({l})"]) for l, _ in bins]
    print(f"{'prepare CPU s':<44} " + " ".join(f"{x:>8.3f}" for x in pcpu))
    # On a shared machine the fastest round is the one least disturbed: the same figures from
    # the minimum wall times.
    least = lambda name: min(x[0] for x in rows[name])
    print(f"{'from min walls: commp speed / openssl speed':<44} "
          + " ".join(f"{least('openssl dgst -sha256') / least(f'commp ({l})'):>8.3f}" for l, _ in bins))
    print(f"{'from min walls: prepare / (commp + dd)':<44} "
          + " ".join(f"{least(f'prepare ({l})') / (least(f'commp ({l})') + least('dd to a new file')):>8.3f}" for l, _ in bins))


if __name__ == "__main__":
    main()
