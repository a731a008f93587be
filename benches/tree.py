#!/usr/bin/env python3
"""Creates a deterministic synthetic folder tree for the folder-scan benchmark (benches/tui.py).

Usage: python3 benches/tree.py DIR [--files 1000000] [--folders 37000] [--seed 1]

Writes exactly --files regular files and exactly --folders folders under DIR/tree (not counting
DIR/tree itself), then DIR/.complete with the parameters; if that marker already holds the same
parameters nothing is done, otherwise DIR/tree is removed and rebuilt.

Layout: about folders**0.3 top folders t000, t001, ...; every other folder is put under a random
earlier one at depth <= 4, so the tree is 2-4 levels deep. DIR/tree/t000/huge holds 200,000
files and nothing else (files // 5 when --files < 1,000,000): the folder to open when measuring
the UI. The other files are spread over the other folders with capped Pareto weights (most hold a
few files, a few hold thousands, the largest about 2% of them, some none). About 2% of files and
1% of folders are dot-files. Sizes are mostly 0-64 KiB (log-uniform), 0.2% are 64 KiB-4 MiB; all
are sparse (os.ftruncate), so the tree takes little more disk than its inodes (1,000,000 files:
~160 MiB on ext4, 7.6 GiB apparent).
"""
import argparse, json, os, random, shutil, time

EXTS = [".txt", ".json", ".rs", ".py", ".jpg", ".png", ".log", ".dat", ".html", ""]


def build(root, files, folders, seed):
    rng = random.Random(seed)
    top = max(2, min(folders - 1, round(folders ** 0.3)))
    dirs = [(f"t{i:03d}", 1) for i in range(top)]  # (relative path, depth)
    dirs.append(("t000/huge", 2))
    parents = list(range(top))  # not huge: it holds files only
    while len(dirs) < folders:
        p, d = dirs[rng.choice(parents)]
        n = len(dirs)
        dirs.append((f"{p}/{'.' if rng.random() < 0.01 else ''}d{n:05d}", d + 1))
        if d + 1 < 4:
            parents.append(n)
    huge = 200_000 if files >= 1_000_000 else files // 5
    counts = [0] * len(dirs)
    counts[top] = huge
    others = [i for i in range(len(dirs)) if i != top]
    weights = [min(rng.paretovariate(1.2), 5000.0) for _ in others]  # largest ~2% of files
    for i in rng.choices(others, weights, k=files - huge):
        counts[i] += 1

    os.makedirs(root)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    total = 0
    for (rel, _), n in zip(dirs, counts):
        os.mkdir(os.path.join(root, rel))
        if not n:
            continue
        dfd = os.open(os.path.join(root, rel), os.O_RDONLY | os.O_DIRECTORY)
        try:
            for j in range(n):
                r = rng.random()
                name = f"{'.' if r < 0.02 else ''}f{j:06d}{EXTS[int(r * 1000) % len(EXTS)]}"
                size = rng.randrange(64 << 10, 4 << 20) if r > 0.998 else rng.randrange(1 << rng.randrange(17))
                fd = os.open(name, flags, 0o644, dir_fd=dfd)
                if size:
                    os.ftruncate(fd, size)
                os.close(fd)
                total += size
        finally:
            os.close(dfd)
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--folders", type=int, default=37_000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.folders < 3 or a.files < 0:
        ap.error("need --folders >= 3 and --files >= 0")
    params = {"files": a.files, "folders": a.folders, "seed": a.seed, "version": 2}
    marker, root = os.path.join(a.dir, ".complete"), os.path.join(a.dir, "tree")
    try:
        with open(marker) as f:
            if {k: v for k, v in json.load(f).items() if k in params} == params:
                print(f"tree ready: {root} ({a.files:,} files, {a.folders:,} folders)")
                return
    except (OSError, ValueError):
        pass
    if os.path.exists(marker):
        os.remove(marker)
    if os.path.exists(root):
        print(f"removing stale {root}")
        shutil.rmtree(root)
    os.makedirs(a.dir, exist_ok=True)
    t = time.perf_counter()
    apparent = build(root, a.files, a.folders, a.seed)
    dt = time.perf_counter() - t
    with open(marker, "w") as f:
        json.dump({**params, "apparent_bytes": apparent, "huge": "tree/t000/huge", "build_s": round(dt, 1)}, f)
        f.write("\n")
    print(f"built {root}: {a.files:,} files, {a.folders:,} folders, {apparent / 2**30:.1f} GiB apparent, in {dt:.1f} s")


if __name__ == "__main__":
    main()
