// The reference JS importer (ipfs-unixfs-importer 12.0.1, installed with js-ipfs 0.66.1) as an
// oracle for tests/it/profiles.rs: imports one file and writes its DAG as a CARv1 in depth-first
// pre-order (each block once), the order `ipfs dag export` and carload use.
//
//   node import-file.mjs FILE OUT.car '{"cidVersion":1,"rawLeaves":true,"chunkSize":1048576,
//                                       "maxChildrenPerNode":1024,"layout":"balanced"}'
//
// Prints the root CID. Trickle uses kubo's settings: layerRepeat 4, UnixFS Raw leaves
// (leafType 'raw') and no reduction of a one-leaf file to its leaf.
import { createReadStream, writeFileSync } from 'node:fs'
import { importer } from 'ipfs-unixfs-importer'
import { CarWriter } from '@ipld/car'
import * as dagPb from '@ipld/dag-pb'

const [file, out, json] = process.argv.slice(2)
const o = JSON.parse(json)
const trickle = o.layout === 'trickle'

const blocks = new Map()
const blockstore = {
  put: async (cid, bytes) => { blocks.set(cid.toString(), bytes); return cid },
  get: async (cid) => blocks.get(cid.toString()),
  has: async (cid) => blocks.has(cid.toString())
}

let root
for await (const entry of importer([{ content: createReadStream(file) }], blockstore, {
  cidVersion: o.cidVersion,
  rawLeaves: o.rawLeaves,
  chunker: 'fixed',
  maxChunkSize: o.chunkSize,
  strategy: trickle ? 'trickle' : 'balanced',
  maxChildrenPerNode: o.maxChildrenPerNode,
  layerRepeat: 4,
  leafType: trickle ? 'raw' : 'file',
  reduceSingleLeafToSelf: !trickle,
  wrapWithDirectory: false
})) {
  root = entry.cid
}

const { writer, out: carOut } = CarWriter.create([root])
const chunks = []
const collected = (async () => { for await (const c of carOut) chunks.push(c) })()
const seen = new Set()
const stack = [root]
while (stack.length > 0) {
  const cid = stack.pop()
  const key = cid.toString()
  if (seen.has(key)) continue
  seen.add(key)
  const bytes = blocks.get(key)
  if (bytes === undefined) throw new Error(`block ${key} missing`)
  await writer.put({ cid, bytes })
  if (cid.code === dagPb.code) {
    const links = dagPb.decode(bytes).Links
    for (let i = links.length - 1; i >= 0; i--) stack.push(links[i].Hash)
  }
}
await writer.close()
await collected
writeFileSync(out, Buffer.concat(chunks))
console.log(root.toString())
