#!/usr/bin/env python3
"""`carload verify` against `carload commp` on the same CAR, and its memory on large and hostile CARs.

Usage: python3 benches/verify.py [--size-mib 1024] [--runs 5] [--blocks 1000000] [--dir DIR] [--skip-speed]

Speed: writes --size-mib of random bytes, builds a CAR of them with `carload prepare` (default
profile), reads it once to put it in the page cache, then runs `commp` and `verify` on it in turn
--runs times and prints the median wall time of each and their ratio (the goal is ≤ 1.25: one
read, block hashing overlapped with commP). The machine may be shared: runs alternate so both
see the same load, and the median is taken.

Memory (peak RSS by GNU time, wall time): a CAR of --blocks raw blocks under file nodes (bytes
per block = RSS over the blocks), a CAR whose manifest DAG reuses nodes so that it would expand
to 1 GiB (`verify` and `manifest`), and link-heavy CARs of about 118 MB: folders whose links
name blocks that are not in the CAR (each link a record to keep) and file nodes linking one
block a million times.
"""
import argparse, hashlib, os, statistics, struct, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "carload")
TIME = "/usr/bin/time"


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def cid_raw(data):
    return b"\x01\x55\x12\x20" + hashlib.sha256(data).digest()


def cid_pb(data):
    return b"\x01\x70\x12\x20" + hashlib.sha256(data).digest()


def field(tag, payload):
    return bytes([tag]) + varint(len(payload)) + payload


def pb_node(links, data):
    """dag-pb: links (cid bytes, name bytes, tsize) then Data."""
    out = bytearray()
    for cid, name, tsize in links:
        inner = field(0x0A, cid) + field(0x12, name) + b"\x18" + varint(tsize)
        out += field(0x12, inner)
    out += field(0x0A, data)
    return bytes(out)


def file_data(filesize, blocksizes):
    out = bytearray(b"\x08\x02\x18") + varint(filesize)
    for b in blocksizes:
        out += b"\x20" + varint(b)
    return bytes(out)


DIRECTORY = b"\x08\x01"


def header(root):
    body = b"\xa2\x65roots\x81\xd8\x2a\x58" + bytes([len(root) + 1]) + b"\x00" + root + b"\x67version\x01"
    return varint(len(body)) + body


def section(cid, data):
    return varint(len(cid) + len(data)) + cid + data


def write_car(path, root, sections):
    with open(path, "wb") as f:
        f.write(header(root))
        for cid, data in sections:
            f.write(section(cid, data))


def many_blocks_car(path, n):
    """n raw blocks of 8 bytes under file nodes of 1000 links, under one file root."""
    parents, leaves = [], []
    for start in range(0, n, 1000):
        group = [struct.pack("<Q", i) for i in range(start, min(n, start + 1000))]
        links = [(cid_raw(d), b"", 8) for d in group]
        node = pb_node(links, file_data(8 * len(group), [8] * len(group)))
        parents.append((cid_pb(node), node, 8 * len(group)))
        leaves.extend((cid_raw(d), d) for d in group)
    top = pb_node([(c, b"", s) for c, _, s in parents], file_data(sum(s for _, _, s in parents), [s for _, _, s in parents]))
    root = cid_pb(top)
    write_car(path, root, [(root, top)] + [(c, d) for c, d, _ in parents] + leaves)
    return 1 + len(parents) + len(leaves)


def reused_manifest_car(path):
    """An aggregate root whose manifest DAG reuses nodes: a 64-byte leaf, two levels of 4096
    links to the level below: a few hundred KB of CAR that reads as a 1 GiB manifest."""
    leaf = b"x" * 64
    level, size = cid_raw(leaf), 64
    sections = [(level, leaf)]
    for _ in range(2):
        node = pb_node([(level, b"", size)] * 4096, file_data(size * 4096, [size] * 4096))
        level, size = cid_pb(node), size * 4096
        sections.append((level, node))
    root = pb_node([(level, b"@AggregateManifest.ndjson", size)], DIRECTORY)
    rcid = cid_pb(root)
    write_car(path, rcid, [(rcid, root)] + sections[::-1])


def links_to_missing_car(path, target):
    """Folders of 60,000 links each to blocks that are not in the CAR, about `target` bytes."""
    sections, total, i = [], 0, 0
    while total < target:
        links = []
        for _ in range(60_000):
            links.append((cid_raw(struct.pack("<Q", i)), b"n%d" % i, 1))
            i += 1
        node = pb_node(links, DIRECTORY)
        sections.append((cid_pb(node), node))
        total += len(node)
    top = pb_node([(c, b"d%d" % k, 1) for k, (c, _) in enumerate(sections)], DIRECTORY)
    root = cid_pb(top)
    write_car(path, root, [(root, top)] + sections)
    return i


def links_to_one_car(path, target):
    """File nodes linking one 1-byte block about a million times each, about `target` bytes."""
    leaf = b"x"
    lcid = cid_raw(leaf)
    n = 1_000_000
    sections, total, k = [], 0, 0
    while total < target:
        # Distinct nodes (each holds one different link at the end) so none is a repeat.
        extra = cid_raw(struct.pack("<Q", k))
        body = pb_node([(lcid, b"", 1)] * n + [(extra, b"", 8)], file_data(n + 8, [1] * n + [8]))
        sections.append((cid_pb(body), body))
        sections.append((extra, struct.pack("<Q", k)))
        total += len(body)
        k += 1
    top = pb_node([(c, b"f%d" % j, 1) for j, (c, d) in enumerate(sections) if len(d) > 8], DIRECTORY)
    root = cid_pb(top)
    write_car(path, root, [(root, top), (lcid, leaf)] + sections)


def b32(cid):
    import base64
    return "b" + base64.b32encode(cid).decode().lower().rstrip("=")


def file_dag(data, sections):
    """The manifest's file DAG (raw leaves of 256 KiB, balanced, 174 links); its root and Size()."""
    level = []
    for i in range(0, max(len(data), 1), 262144):
        chunk = data[i : i + 262144]
        c = cid_raw(chunk)
        sections.append((c, chunk))
        level.append((c, len(chunk), len(chunk)))  # cid, file bytes, Size()
    while len(level) > 1:
        up = []
        for i in range(0, len(level), 174):
            group = level[i : i + 174]
            node = pb_node([(c, b"", t) for c, _, t in group], file_data(sum(n for _, n, _ in group), [n for _, n, _ in group]))
            c = cid_pb(node)
            sections.append((c, node))
            up.append((c, sum(n for _, n, _ in group), len(node) + sum(t for _, _, t in group)))
        level = up
    return level[0][0], level[0][2]


def aggregate_car(path, n):
    """A go-dagaggregator-unixfs aggregate of n one-block entries (raw blocks of 8 bytes)."""
    entries = sorted((b32(cid_raw(struct.pack("<Q", i))), struct.pack("<Q", i)) for i in range(n))
    tree = {}
    for name, data in entries:
        outer, inner = name[:3] + "..." + name[-2:], name[:3] + "..." + name[-4:]
        tree.setdefault(outer, {}).setdefault(inner, []).append((name, data))
    lines = [b'{"RecordType":"DagAggregatePreamble","Version":1}',
             b'{"RecordType":"DagAggregateSummary","EntryCount":%d,"EntriesSortedBy":"DagCidV1","Description":"Aggregate of non-related DAGs, produced by github.com/filecoin-project/go-dagaggregator-unixfs"}' % n]
    where = {}
    buckets, root_links = [], []
    for oi, outer in enumerate(sorted(tree)):
        outer_links = []
        for ii, inner in enumerate(sorted(tree[outer])):
            members = tree[outer][inner]
            links = []
            for ei, (name, data) in enumerate(members):
                where[name] = (outer, inner, oi + 1, ii, ei)
                links.append((cid_raw(data), name.encode(), 0))
            node = pb_node(links, DIRECTORY)
            c = cid_pb(node)
            buckets.append((c, node, [(cid_raw(d), d) for _, d in members]))
            outer_links.append((c, inner.encode(), len(node)))
        node = pb_node(outer_links, DIRECTORY)
        c = cid_pb(node)
        buckets.append((c, node, None))
        root_links.append((c, outer.encode(), len(node) + sum(t for _, _, t in outer_links)))
    for name, _ in entries:
        o, i, a, b, e = where[name]
        lines.append(b'{"RecordType":"DagAggregateEntry","DagCidV1":"%s","PathPrefixes":["%s","%s"],"PathIndexes":[%d,%d,%d]}' % (name.encode(), o.encode(), i.encode(), a, b, e))
    manifest = b"\n".join(lines) + b"\n"
    msections = []
    mroot, msize = file_dag(manifest, msections)
    root = pb_node([(mroot, b"@AggregateManifest.ndjson", msize)] + root_links, DIRECTORY)
    rcid = cid_pb(root)
    # CAR order: root, manifest (root first), then buckets with their entries (any order is
    # fine for verify; this one keeps parents before children).
    out = [(rcid, root)] + msections[::-1]
    for c, node, members in reversed(buckets):
        out.append((c, node))
        if members:
            out.extend(members)
    write_car(path, rcid, out)
    return len(out)


def run(cmd, ok_codes=(0,)):
    """Runs cmd under GNU time: (seconds, peak RSS MiB, exit code)."""
    rss_path = os.path.join(tempfile.gettempdir(), "carload-verify-bench-rss.txt")
    full = [TIME, "-f", "%M", "-o", rss_path, *cmd]
    t = time.perf_counter()
    p = subprocess.run(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if p.returncode not in ok_codes:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.decode()[-2000:]}")
    rss = int(open(rss_path).read().split()[-1]) / 1024
    return dt, rss, p.returncode


def warm(path):
    with open(path, "rb", buffering=0) as f:
        while f.read(16 << 20):
            pass


def speed(a):
    data = os.path.join(a.dir, f"random-{a.size_mib}m")
    car = data + ".car"
    if not os.path.exists(car):
        with open(data, "wb") as f:
            for _ in range(a.size_mib):
                f.write(os.urandom(1 << 20))
        subprocess.run([BIN, "prepare", "-q", "-f", data, car], check=True, stdout=subprocess.DEVNULL)
        os.remove(data)
    warm(car)
    commp, verify, rss = [], [], []
    for _ in range(a.runs):
        commp.append(run([BIN, "commp", car])[0])
        dt, r, _ = run([BIN, "verify", "-q", car])
        verify.append(dt)
        rss.append(r)
    c, v = statistics.median(commp), statistics.median(verify)
    size = os.path.getsize(car)
    print(f"speed: CAR of {size / 2**30:.2f} GiB, {a.runs} runs each, alternating")
    print(f"  commp   median {c:6.2f} s   (runs {', '.join(f'{x:.2f}' for x in commp)})")
    print(f"  verify  median {v:6.2f} s   (runs {', '.join(f'{x:.2f}' for x in verify)}), peak RSS {max(rss):.0f} MiB")
    print(f"  verify / commp = {v / c:.2f}")


def memory(a):
    print("memory (peak RSS, wall time):")
    tiny = os.path.join(a.dir, "tiny.car")
    many_blocks_car(tiny, 1000)
    base = run([BIN, "verify", "-q", tiny])[1]
    print(f"  baseline (1,001 blocks)                 {base:7.0f} MiB")

    big = os.path.join(a.dir, f"blocks-{a.blocks}.car")
    if not os.path.exists(big):
        n = many_blocks_car(big, a.blocks)
    else:
        n = a.blocks + a.blocks // 1000 + 1
    dt, rss, _ = run([BIN, "verify", "-q", big])
    per = (rss - base) * 2**20 / n
    print(f"  {n:,} blocks ({os.path.getsize(big) / 1e6:.0f} MB)   {rss:7.0f} MiB  {dt:6.2f} s   {per:.0f} bytes per block (RSS over the baseline, chunks in flight included)")

    agg = os.path.join(a.dir, f"aggregate-{a.entries}.car")
    if not os.path.exists(agg):
        aggregate_car(agg, a.entries)
    dt, rss, _ = run([BIN, "verify", "-q", agg])
    per = (rss - base) * 2**20 / a.entries
    print(f"  aggregate of {a.entries:,} entries ({os.path.getsize(agg) / 1e6:.0f} MB)   {rss:7.0f} MiB  {dt:6.2f} s   {per:.0f} bytes per entry (RSS over the baseline)")
    dt, rss, _ = run([BIN, "manifest", agg])
    print(f"  manifest of it                          {rss:7.0f} MiB  {dt:6.2f} s")

    reused = os.path.join(a.dir, "reused-manifest.car")
    reused_manifest_car(reused)
    kb = os.path.getsize(reused) / 1e3
    for cmd in ("verify", "manifest"):
        dt, rss, code = run([BIN, cmd, reused], ok_codes=(0, 1))
        print(f"  manifest reusing nodes ({kb:.0f} KB), {cmd:8} {rss:7.0f} MiB  {dt:6.2f} s   exit {code}")

    missing = os.path.join(a.dir, f"links-to-missing-{a.link_mb}.car")
    links = links_to_missing_car(missing, a.link_mb * 10**6)
    dt, rss, code = run([BIN, "verify", "-q", missing], ok_codes=(1,))
    print(f"  {links:,} links to missing blocks ({os.path.getsize(missing) / 1e6:.0f} MB) {rss:7.0f} MiB  {dt:6.2f} s   exit {code}")

    one = os.path.join(a.dir, f"links-to-one-{a.link_mb}.car")
    links_to_one_car(one, a.link_mb * 10**6)
    dt, rss, code = run([BIN, "verify", "-q", one], ok_codes=(0, 1))
    print(f"  file nodes of 1M links to one block ({os.path.getsize(one) / 1e6:.0f} MB) {rss:7.0f} MiB  {dt:6.2f} s   exit {code}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--blocks", type=int, default=1_000_000)
    ap.add_argument("--link-mb", type=int, default=118)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "carload-verify-bench"))
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(TIME):
        sys.exit(f"{TIME} (GNU time) is needed for peak RSS")
    os.makedirs(a.dir, exist_ok=True)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    if not a.skip_speed:
        speed(a)
    if not a.skip_memory:
        memory(a)


if __name__ == "__main__":
    main()
