// The reference JS exporter (ipfs-unixfs-exporter 10.0.1, installed with js-ipfs 0.66.1) reading a
// folder CAR carload wrote (basic or HAMT-sharded folders), for tests/it/hamt.rs: restores the
// tree its root names under OUT (files and folders; symlinks are not expected).
//
//   node export-tree.mjs IN.car OUT
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { CarReader } from '@ipld/car'
import { exporter } from 'ipfs-unixfs-exporter'

const [car, out] = process.argv.slice(2)
const reader = await CarReader.fromBytes(readFileSync(car))
const [root] = await reader.getRoots()
const blockstore = {
  get: async (cid) => {
    const block = await reader.get(cid)
    if (block === undefined) throw new Error(`block ${cid} is not in the CAR`)
    return block.bytes
  }
}

async function restore (entry, path) {
  if (entry.type === 'directory') {
    mkdirSync(path)
    for await (const child of entry.content()) {
      await restore(await exporter(child.cid, blockstore), join(path, child.name))
    }
  } else if (entry.type === 'file' || entry.type === 'raw') {
    const chunks = []
    for await (const chunk of entry.content()) chunks.push(chunk)
    writeFileSync(path, Buffer.concat(chunks))
  } else {
    throw new Error(`${path}: unexpected ${entry.type}`)
  }
}

await restore(await exporter(root, blockstore), out)
