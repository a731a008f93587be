// The reference JS exporter (ipfs-unixfs-exporter 10.0.1, installed with js-ipfs 0.66.1) reading a
// CAR carload wrote, for tests/it/profiles.rs: writes the bytes of the file its root names.
//
//   node export-car.mjs IN.car OUT
import { readFileSync, writeFileSync } from 'node:fs'
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
const entry = await exporter(root, blockstore)
if (entry.type !== 'file' && entry.type !== 'raw') throw new Error(`root ${root} is a ${entry.type}, not a file`)
const chunks = []
for await (const chunk of entry.content()) chunks.push(chunk)
writeFileSync(out, Buffer.concat(chunks))
