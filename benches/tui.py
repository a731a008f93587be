#!/usr/bin/env python3
"""Folder scan of the workstation (`carload tui --bench`) side by side with gdu and ncdu.

Usage: python3 benches/tui.py [--dir DIR] [--runs 5] [--files 1000000] [--folders N]

Makes sure DIR/tree exists (benches/tree.py; default DIR $TMPDIR/carload-tui-bench, --folders
default 3.7% of --files, i.e. 37,000 for 1,000,000; DIR/tree/t000/huge holds 200,000 files),
builds carload (release), warms the page cache with one discarded `gdu -n` run and one discarded
carload run, then for --runs rounds runs in turn
    gdu -n -p DIR/tree                       (Debian package gdu; non-interactive, no progress)
    ncdu -0 -o /dev/null DIR/tree            (Debian package ncdu 1.x; no UI, export discarded)
    target/release/carload tui --bench DIR/tree
and prints the median wall time and peak RSS of each (os.wait4 of the child), the median of the
per-round ratios of each tool's wall time to gdu's, carload's bytes per entry above a 64 MiB
floor, and the medians of the fields of the JSON line `carload tui --bench` prints. If carload
fails (e.g. before `tui --bench` exists) the gdu and ncdu figures are still printed. gdu -n
keeps the whole tree in memory; ncdu 1.x with -o streams the export and keeps none, so its RSS
is a floor rather than a browser's footprint.
Install the other tools with `apt-get install gdu ncdu`.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOOR = 64 << 20


def run(cmd, capture=False):
    """Runs cmd; returns (returncode, wall s, peak RSS KiB of the child, stdout, stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out if capture else subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        return p.returncode, dt, ru.ru_maxrss, out.read().decode(errors="replace"), err.read().decode(errors="replace")


def json_line(text):
    for line in reversed(text.splitlines()):
        try:
            v = json.loads(line)
            if isinstance(v, dict):
                return v
        except ValueError:
            pass
    return None


def machine():
    kv = lambda path: {k.strip(): v.strip() for k, v in (l.split(":", 1) for l in open(path) if ":" in l)}
    info, mem = kv("/proc/cpuinfo"), kv("/proc/meminfo")
    cpus = len(os.sched_getaffinity(0))
    ver = lambda cmd: (subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines() or ["?"])[0]
    return (f"machine: nproc {cpus}, {info.get('model name', '?')}, "
            f"{int(mem['MemTotal'].split()[0]) / 2**20:.1f} GiB RAM; gdu {ver(['gdu', '--version']).split()[-1]}; {ver(['ncdu', '-v'])}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "carload-tui-bench"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--folders", type=int)
    a = ap.parse_args()
    folders = a.folders or max(3, round(a.files * 0.037))
    subprocess.run([sys.executable, os.path.join(ROOT, "benches", "tree.py"), a.dir,
                    "--files", str(a.files), "--folders", str(folders)], check=True)
    tree = os.path.join(a.dir, "tree")
    entries = a.files + folders + 1

    exe = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "carload")
    if subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT).returncode != 0:
        print("carload: cargo build --release failed; measuring gdu and ncdu only")
        exe = None
    tools = {"gdu": ["gdu", "-n", "-p", tree], "ncdu": ["ncdu", "-0", "-o", "/dev/null", tree]}
    if exe:
        tools["carload"] = [exe, "tui", "--bench", tree]

    print(machine())
    print(f"tree: {tree} ({a.files:,} files, {folders:,} folders); {a.runs} rounds")
    for name in ("gdu", "carload"):  # warm the page cache; results discarded
        if name in tools:
            rc, _, _, _, err = run(tools[name])
            if rc != 0 and name == "carload":
                print(f"carload FAILED (exit {rc}): {' '.join(tools[name])}\n  {err.strip()[-500:]}\n  -> measuring gdu and ncdu only")
                del tools[name]
            elif rc != 0:
                sys.exit(f"{name} failed (exit {rc}): {err}")

    wall = {t: [] for t in tools}
    rss = {t: [] for t in tools}
    ratio = {t: [] for t in tools}
    fields = {}
    scan_ratio = []
    for _ in range(a.runs):
        for name, cmd in list(tools.items()):
            rc, dt, kib, out, err = run(cmd, capture=name == "carload")
            if rc != 0:
                if name != "carload":
                    sys.exit(f"{name} failed (exit {rc}): {err}")
                print(f"carload FAILED (exit {rc}) in a round: {err.strip()[-500:]}")
                continue
            wall[name].append(dt)
            rss[name].append(kib / 1024)
            ratio[name].append(dt / wall["gdu"][-1])
            for k, v in (json_line(out) or {}).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    fields.setdefault(k, []).append(v)
            if name == "carload" and "scan_wall_s" in (json_line(out) or {}):
                # The scan alone (the process goes on to time keys and an auto-pack).
                scan_ratio.append(json_line(out)["scan_wall_s"] / wall["gdu"][-1])

    med = statistics.median
    print(f"\n{'tool':<8} {'wall s':>8} {'peak RSS MiB':>13} {'x gdu wall':>11}   command")
    for name, cmd in tools.items():
        if wall[name]:
            print(f"{name:<8} {med(wall[name]):>8.2f} {med(rss[name]):>13.0f} {med(ratio[name]):>11.2f}   {' '.join(cmd)}")
        else:
            print(f"{name:<8} {'failed':>8}")
    if "carload" in tools and wall["carload"]:
        n = med(fields["entries"]) if "entries" in fields else entries
        if scan_ratio:
            print(f"\ncarload scan complete / gdu wall (median of rounds): {med(scan_ratio):.2f}")
        if "rss_kib" in fields:
            after = med(fields["rss_kib"]) * 1024
            print(f"carload RSS after the scan: {after / 2**20:.0f} MiB = {after / n:.0f} bytes/entry in all; "
                  f"{(after - FLOOR) / n:.0f} bytes/entry above a 64 MiB floor ({n:,.0f} entries)")
        print(f"carload peak RSS (auto-pack of every file included): {(med(rss['carload']) * 2**20 - FLOOR) / n:.0f} bytes/entry above a 64 MiB floor")
        if fields:
            print("carload internal medians: " + ", ".join(f"{k} {med(v):g}" for k, v in fields.items()))
        else:
            print("carload printed no JSON line")
    else:
        print("\ncarload: no successful run (see message above)")


if __name__ == "__main__":
    main()
