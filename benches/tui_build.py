#!/usr/bin/env python3
"""Building from the workstation vs `carload build`, side by side in one run.

Usage: python3 benches/tui_build.py [--runs 5] [--large-mib 256] [--large 6] [--small 2000] [--piece 1GiB]

Makes random inputs under $TMPDIR/carload-tui-build (--large files of --large-mib MiB and --small
files of 64 KiB), plans them with `carload plan --piece-size PIECE`, builds the release binary,
then for --runs rounds, in turn, builds every batch into a fresh folder on /dev/shm (when present,
so the figures measure carload rather than the disk) with
    carload build SHIPMENT --out A
    carload tui --bench-build --shipment SHIPMENT --out B
(in alternating order; the second presses `B` in the workstation and runs its terminal loop, drawing to an in-memory
120x40 terminal, until every batch is built). Prints the median wall time and MB/s of each, the
median of the per-round ratios of the workstation's throughput to the CLI's, the interface
thread's own CPU use while building (percent of one core), and checks the CARs are identical.
"""
import argparse, filecmp, json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "carload")


def make_inputs(d, large, large_mib, small):
    marker = os.path.join(d, f".complete-{large}-{large_mib}-{small}")
    data = os.path.join(d, "data")
    if os.path.exists(marker):
        return data
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(os.path.join(data, "small"))
    for i in range(large):
        with open(os.path.join(data, f"large{i:02}.bin"), "wb") as f:
            for _ in range(large_mib):
                f.write(os.urandom(1 << 20))
    for i in range(small):
        with open(os.path.join(data, "small", f"f{i:05}"), "wb") as f:
            f.write(os.urandom(64 << 10))
    open(marker, "w").close()
    return data


def timed(cmd, env):
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.decode()}")
    return dt, p.stdout.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--large", type=int, default=6)
    ap.add_argument("--large-mib", type=int, default=256)
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--piece", default="1GiB")
    a = ap.parse_args()
    base = os.path.join(tempfile.gettempdir(), "carload-tui-build")
    os.makedirs(base, exist_ok=True)
    data = make_inputs(base, a.large, a.large_mib, a.small)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(base, "cfg"), XDG_DATA_HOME=os.path.join(base, "share"))
    ship = os.path.join(base, "ship.jsonl")
    subprocess.run([BIN, "plan", data, "-o", ship, "--piece-size", a.piece, "--force", "-q"], check=True, cwd=base)
    outs = "/dev/shm" if os.path.isdir("/dev/shm") else base
    cli_out, tui_out = os.path.join(outs, "carload-cli-build"), os.path.join(outs, "carload-tui-build")
    for p in subprocess.run(["find", data, "-type", "f"], capture_output=True, text=True).stdout.split():
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass
    cli_t, tui_t, ratios, cpu_pct, total = [], [], [], [], 0
    for r in range(a.runs):
        for d in (cli_out, tui_out):
            shutil.rmtree(d, ignore_errors=True)
        # Alternate which goes first, so neither always meets the other's freshly written pages.
        cli = lambda: timed([BIN, "build", ship, "--out", cli_out, "-q"], env)
        tui = lambda: timed([BIN, "tui", "--bench-build", "--shipment", ship, "--out", tui_out], env)
        if r % 2 == 0:
            (dt, _), (dt2, out) = cli(), tui()
        else:
            (dt2, out), (dt, _) = tui(), cli()
        cli_t.append(dt)
        j = json.loads(out.strip().splitlines()[-1])
        if j["failed"] or j["built"] != j["batches"]:
            sys.exit(f"workstation build incomplete: {j}")
        total = j["bytes"]
        tui_t.append(j["build_s"])
        cpu_pct.append(j["ui_cpu_pct"])
        ratios.append(dt / j["build_s"])
    cars = sorted(f for f in os.listdir(cli_out) if f.endswith(".car"))
    same = all(filecmp.cmp(os.path.join(cli_out, c), os.path.join(tui_out, c), shallow=False) for c in cars)
    med = statistics.median
    print(f"machine: nproc {os.cpu_count()}; inputs {total / 2**20:.0f} MiB in {a.large} large + {a.small} small files; "
          f"{len(cars)} batches of {a.piece}; outputs in {outs}; {a.runs} rounds")
    print(f"carload build            {med(cli_t):7.2f} s  {total / med(cli_t) / 1e6:7.0f} MB/s")
    print(f"workstation (B)          {med(tui_t):7.2f} s  {total / med(tui_t) / 1e6:7.0f} MB/s  (build time from the key press)")
    print(f"workstation / CLI throughput: {med(ratios):.3f} (median of per-round ratios; target >= 0.95)")
    print(f"interface thread CPU while building: {med(cpu_pct):.2f} % of one core (target <= 2 %)")
    print(f"CARs identical: {same} ({len(cars)} files)")


if __name__ == "__main__":
    main()
