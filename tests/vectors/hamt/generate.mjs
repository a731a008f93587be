// Makes the HAMT fixtures with the reference JS importer (ipfs-unixfs-importer), written as
// CARv1 with @ipld/car in the order the importer stores blocks (children before parents).
//
//   cd SCRATCH && npm install ipfs-unixfs-importer@17.1.1 @ipld/car@5.4.7 blockstore-core@7.0.1
//   cp generate.mjs SCRATCH/ && node SCRATCH/generate.mjs tests/vectors/hamt
// (node 20; ES modules resolve packages beside the script, so it runs from SCRATCH.)
//
// The trees are functions of their names, which tests/it/hamt.rs rebuilds:
// - js-hamt-256.car: CIDv1, raw leaves, fanout 256, 1 KiB chunks, folders sharded above 1000
//   bytes of links: f0.txt … f2999.txt, hello, mars.txt, 470.txt, "with space.txt", "çà-ü.txt"
//   (each holding its path and a newline), big.bin (5000 bytes, byte i = i mod 251), nested/
//   (n0 … n299, sharded) and small/ (a, b: a basic folder).
// - js-hamt-16.car: CIDv0, dag-pb leaves, fanout 16: g0 … g399.
// - js-hamt-8.car and js-hamt-1024.car: CIDv1, raw leaves, fanouts 8 and 1024 (3 and 10 bits a
//   level, not a whole byte): h0 … h299 and k0 … k1199.
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { CarWriter } from '@ipld/car'
import { MemoryBlockstore } from 'blockstore-core/memory'
import fs from 'node:fs'
import path from 'node:path'

const out = process.argv[2] ?? '.'
const text = (p) => new TextEncoder().encode(p + '\n')

/** A blockstore that remembers the order blocks were first put in. */
class Recording extends MemoryBlockstore {
  order = []
  async put (cid, bytes, options) {
    if (!(await this.has(cid))) this.order.push([cid, bytes])
    return super.put(cid, bytes, options)
  }
}

async function write (name, files, options) {
  const store = new Recording()
  let root
  for await (const entry of importer(files, store, { wrapWithDirectory: false, ...options })) {
    if (entry.path === 'root') root = entry.cid
  }
  const { writer, out: bytes } = CarWriter.create([root])
  const chunks = []
  const done = (async () => { for await (const c of bytes) chunks.push(c) })()
  for (const [cid, data] of store.order) await writer.put({ cid, bytes: data })
  await writer.close()
  await done
  fs.writeFileSync(path.join(out, name), Buffer.concat(chunks))
  console.log(name, root.toString(), store.order.length, 'blocks')
}

const big = Uint8Array.from({ length: 5000 }, (_, i) => i % 251)
const names = [...Array.from({ length: 3000 }, (_, i) => `f${i}.txt`), 'hello', 'mars.txt', '470.txt', 'with space.txt', 'çà-ü.txt']
const files256 = [
  ...names.map((n) => ({ path: `root/${n}`, content: text(n) })),
  { path: 'root/big.bin', content: big },
  ...Array.from({ length: 300 }, (_, i) => ({ path: `root/nested/n${i}`, content: text(`nested/n${i}`) })),
  { path: 'root/small/a', content: text('small/a') },
  { path: 'root/small/b', content: text('small/b') }
]
await write('js-hamt-256.car', files256, {
  cidVersion: 1,
  rawLeaves: true,
  shardSplitThresholdBytes: 1000,
  chunker: fixedSize({ chunkSize: 1024 })
})

const files16 = Array.from({ length: 400 }, (_, i) => ({ path: `root/g${i}`, content: text(`g${i}`) }))
await write('js-hamt-16.car', files16, {
  cidVersion: 0,
  rawLeaves: false,
  shardFanoutBits: 4,
  shardSplitThresholdBytes: 1000
})

for (const [bits, prefix, n] of [[3, 'h', 300], [10, 'k', 1200]]) {
  const files = Array.from({ length: n }, (_, i) => ({ path: `root/${prefix}${i}`, content: text(`${prefix}${i}`) }))
  await write(`js-hamt-${1 << bits}.car`, files, {
    cidVersion: 1,
    rawLeaves: true,
    shardFanoutBits: bits,
    shardSplitThresholdBytes: 1000
  })
}
