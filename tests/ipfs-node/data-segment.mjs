// The reference aggregate of @web3-storage/data-segment, for tests/it/segment.rs.
// Usage: node data-segment.mjs '<json>' where json = {"size": D, "pieces": [v2 piece CID, ...],
//   "proofs": [{"piece": v2 piece CID, "cbor": hex of carload's InclusionProof}, ...]}
// Prints {"link", "offsets", "sizes", "index" (hex of the padded index entries),
//   "proofs" (hex of data-segment's own proof of each given piece, first match),
//   "resolved" (the aggregate link data-segment resolves from each of carload's proofs)}.
import { Aggregate, Piece, Segment, Inclusion } from '@web3-storage/data-segment'

const input = JSON.parse(process.argv[2])
const hex = (b) => Buffer.from(b).toString('hex')
const pieces = input.pieces.map((s) => Piece.fromString(s))
const aggregate = Aggregate.build({ pieces, size: BigInt(input.size) })
const out = {
  link: aggregate.link.toString(),
  offsets: aggregate.index.map((s) => s.offset.toString()),
  sizes: aggregate.index.map((s) => s.size.toString()),
  index: aggregate.index.map((s) => hex(Segment.toBytes(s))).join(''),
  proofs: [],
  resolved: [],
}
for (const { piece, cbor } of input.proofs) {
  const link = Piece.fromString(piece).link
  const own = aggregate.resolveProof(link)
  if (own.error) throw own.error
  out.proofs.push(hex(Inclusion.encode(own.ok)))
  const theirs = Inclusion.decode(Buffer.from(cbor, 'hex'))
  const r = Inclusion.resolveAggregate(theirs, link)
  out.resolved.push(r.error ? `error: ${r.error.message}` : r.ok.toString())
}
console.log(JSON.stringify(out))
