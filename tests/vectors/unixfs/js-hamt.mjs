// Makes js-hamt.car: a HAMT-sharded folder built by the reference JS importer
// (ipfs-unixfs-importer 12.0.1, CIDv0, dag-pb leaves, fanout 256), exported in `ipfs dag export`
// order (depth-first pre-order from the root, each CID once). tests/it/hamt.rs builds the same
// tree with carload and compares the CARs byte for byte.
//
//   (cd tests/ipfs-node && npm ci) && node tests/vectors/unixfs/js-hamt.mjs tests/vectors/unixfs/js-hamt.car
//
// The tree: hamt/f0000…f1999 holding "x", hamt/many/m00…m39 and hamt/few/w0…w2 holding their
// names. This importer shards a folder of 30 or more entries (hamt, many) and not a smaller one
// (few); carload makes the same choice with kubo's rule at 1000 bytes by links.
import { writeFileSync } from 'node:fs'

const modules = new URL('../../ipfs-node/node_modules/', import.meta.url)
const load = (path) => import(new URL(path, modules).href)
const { importer } = await load('ipfs-unixfs-importer/src/index.js')
const { CarWriter } = await load('@ipld/car/src/index.js')
const dagPb = await load('@ipld/dag-pb/src/index.js')
const { MemoryBlockstore } = await load('blockstore-core/src/index.js')

const text = (s) => new TextEncoder().encode(s)
const pad = (i, n) => String(i).padStart(n, '0')
const source = []
for (let i = 0; i < 2000; i++) source.push({ path: `hamt/f${pad(i, 4)}`, content: text('x') })
for (let i = 0; i < 40; i++) source.push({ path: `hamt/many/m${pad(i, 2)}`, content: text(`m${pad(i, 2)}`) })
for (let i = 0; i < 3; i++) source.push({ path: `hamt/few/w${i}`, content: text(`w${i}`) })

const blockstore = new MemoryBlockstore()
let root
for await (const entry of importer(source, blockstore, { cidVersion: 0, rawLeaves: false, shardSplitThreshold: 30 })) {
  if (entry.path === 'hamt') root = entry.cid
}

const { writer, out } = CarWriter.create([root])
const chunks = []
const collected = (async () => { for await (const c of out) chunks.push(c) })()
const seen = new Set()
async function walk (cid) {
  if (seen.has(cid.toString())) return
  seen.add(cid.toString())
  const bytes = await blockstore.get(cid)
  await writer.put({ cid, bytes })
  if (cid.code === dagPb.code) {
    for (const link of dagPb.decode(bytes).Links) await walk(link.Hash)
  }
}
await walk(root)
await writer.close()
await collected
writeFileSync(process.argv[2], Buffer.concat(chunks))
console.log(`${root} ${seen.size} blocks`)
