// Transactions, merkle paths and BEEF, both ways against the reference TypeScript SDK (@bsv/sdk
// 2.1.0): the SDK builds each value at test time, `mpc-wallet decode` (wallet-bsv) parses it to
// the same txids, roots and bytes, and what ours writes (the same value, the other BEEF version,
// Atomic BEEF, Extended Format) the SDK reads back to equal values. Uses target/debug/mpc-wallet.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Beef, Hash, LockingScript, MerklePath, P2PKH, PrivateKey, Transaction, UnlockingScript, Utils } from '@bsv/sdk'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = process.env.MPC_WALLET_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'mpc-wallet')

/** Ours: the decoded JSON, or the error text when decode refuses the input. */
function decode (hex, kind = 'auto') {
  return JSON.parse(execFileSync(bin, ['decode', '--kind', kind, '-'], { input: hex, encoding: 'utf8' }))
}

function decodeError (hex, kind = 'auto') {
  try {
    execFileSync(bin, ['decode', '--kind', kind, '-'], { input: hex, encoding: 'utf8', stdio: 'pipe' })
  } catch (e) {
    return e.stderr.toString()
  }
  assert.fail('decode accepted what it should refuse')
}

const hex = n => randomBytes(n).toString('hex')
const p2pkh = () => new P2PKH().lock(PrivateKey.fromRandom().toAddress())
const unlocking = () => new UnlockingScript().writeBin(Array.from(randomBytes(71))).writeBin(Array.from(randomBytes(33)))

/** A transaction with `nIn` inputs (each with a source transaction when `sources`) and `nOut` outputs. */
function randomTx (nIn, nOut, sources = true) {
  const tx = new Transaction(randomInt(1, 3), [], [], randomInt(0, 500_000))
  for (let i = 0; i < nIn; i++) {
    const input = { sourceOutputIndex: 0, unlockingScript: unlocking(), sequence: randomInt(0, 2 ** 32) }
    if (sources) {
      const source = new Transaction()
      source.addInput({ sourceTXID: hex(32), sourceOutputIndex: 0, unlockingScript: unlocking(), sequence: 0xffffffff })
      source.addOutput({ lockingScript: p2pkh(), satoshis: randomInt(1, 2 ** 40) })
      input.sourceTransaction = source
    } else {
      input.sourceTXID = hex(32)
      input.sourceOutputIndex = randomInt(0, 100)
    }
    tx.addInput(input)
  }
  for (let o = 0; o < nOut; o++) tx.addOutput({ lockingScript: p2pkh(), satoshis: randomInt(0, 2 ** 40) })
  tx.addOutput({ lockingScript: LockingScript.fromASM(`OP_FALSE OP_RETURN ${hex(randomInt(1, 300))}`), satoshis: 0 })
  return tx
}

/** hash256 of two display-order hashes, as a merkle node (display order). */
const pair = (l, r) => Utils.toHex(Hash.hash256([...Utils.toArray(l, 'hex').reverse(), ...Utils.toArray(r, 'hex').reverse()]).reverse())

/** The merkle path that proves `chosen` (indexes) of the block `txids`, every needed sibling given. */
function pathFor (height, txids, chosen) {
  const levels = [txids]
  while (levels.at(-1).length > 1) {
    const l = levels.at(-1)
    levels.push(Array.from({ length: Math.ceil(l.length / 2) }, (_, i) => pair(l[2 * i], l[2 * i + 1] ?? l[2 * i])))
  }
  const depth = Math.max(1, levels.length - 1)
  const path = Array.from({ length: depth }, () => new Map())
  for (const i of chosen) {
    path[0].set(i, { offset: i, hash: txids[i], txid: true })
    for (let h = 0; h < levels.length - 1; h++) {
      const s = (i >> h) ^ 1
      if (path[h].get(s)?.txid) continue
      path[h].set(s, s < levels[h].length ? { offset: s, hash: levels[h][s] } : { offset: s, duplicate: true })
    }
  }
  return { path: new MerklePath(height, path.map(m => [...m.values()].sort((a, b) => a.offset - b.offset))), root: levels.at(-1)[0] }
}

test('raw and Extended Format transactions: same txid and bytes both ways', () => {
  for (const [nIn, nOut] of [[1, 1], [3, 2], [10, 5]]) {
    const tx = randomTx(nIn, nOut)
    const raw = decode(tx.toHex(), 'tx')
    assert.equal(raw.txid, tx.id('hex'))
    assert.equal(raw.hex, tx.toHex())
    assert.equal(raw.ef, null)
    assert.equal(raw.size, tx.toBinary().length)
    const ef = decode(tx.toHexEF(), 'tx')
    assert.equal(ef.txid, tx.id('hex'))
    assert.equal(ef.ef, tx.toHexEF())
    ef.inputs.forEach((input, i) => {
      const source = tx.inputs[i].sourceTransaction.outputs[0]
      assert.equal(input.sourceSatoshis, source.satoshis)
      assert.equal(input.sourceLockingScript, source.lockingScript.toHex())
      assert.equal(input.sourceTxid, tx.inputs[i].sourceTransaction.id('hex'))
    })
    const back = Transaction.fromHexEF(ef.ef)
    assert.equal(back.id('hex'), tx.id('hex'))
    assert.equal(Transaction.fromHex(raw.hex).id('hex'), tx.id('hex'))
  }
})

test('merkle paths: the same roots and bytes, single and compound, odd and even blocks', () => {
  for (const n of [1, 2, 3, 7, 8, 13, 64, 301]) {
    const txids = Array.from({ length: n }, () => hex(32))
    const chosen = [...new Set([0, n - 1, randomInt(0, n), randomInt(0, n)])]
    const { path, root: blockRoot } = pathFor(randomInt(1, 900_000), txids, chosen)
    const ours = decode(path.toHex(), 'bump')
    assert.equal(ours.hex, path.toHex(), `block of ${n}`)
    assert.equal(ours.blockHeight, path.blockHeight)
    for (const i of chosen) {
      const mine = ours.roots.find(r => r.txid === txids[i])
      assert.equal(mine.root, path.computeRoot(txids[i]), `block of ${n}, tx ${i}`)
      assert.equal(mine.root, blockRoot)
      assert.equal(MerklePath.fromHex(ours.hex).computeRoot(txids[i]), blockRoot)
    }
  }
  // A path that keeps level 0 only (every transaction of an odd block): the SDK computes the rest.
  const txids = Array.from({ length: 5 }, () => hex(32))
  const flat = new MerklePath(10, [txids.map((hash, offset) => ({ offset, hash, txid: offset === 4 }))])
  const ours = decode(flat.toHex(), 'bump')
  assert.equal(ours.roots.find(r => r.txid === txids[4]).root, flat.computeRoot(txids[4]))
})

/** A mined grandparent (with its merkle path), a parent spending it, a child spending the parent. */
function chain () {
  const grandparent = randomTx(1, 2, false)
  const txids = Array.from({ length: 6 }, () => hex(32))
  txids[3] = grandparent.id('hex')
  const { path, root: blockRoot } = pathFor(812_345, txids, [3])
  grandparent.merklePath = path
  const parent = new Transaction()
  parent.addInput({ sourceTransaction: grandparent, sourceOutputIndex: 1, unlockingScript: unlocking(), sequence: 0xffffffff })
  parent.addOutput({ lockingScript: p2pkh(), satoshis: 5000 })
  const child = new Transaction()
  child.addInput({ sourceTransaction: parent, sourceOutputIndex: 0, unlockingScript: unlocking(), sequence: 0xffffffff })
  child.addOutput({ lockingScript: p2pkh(), satoshis: 4000 })
  return { grandparent, parent, child, blockRoot }
}

function assertSameBeef (ours, sdkBeef, label) {
  assert.deepEqual(ours.txs.map(t => t.txid), sdkBeef.txs.map(t => t.txid), label)
  assert.deepEqual(ours.txs.map(t => t.txidOnly), sdkBeef.txs.map(t => t.isTxidOnly), label)
}

test('BEEF V1, V2 and Atomic BEEF: same txids, roots and bytes; ours read back by the SDK', () => {
  const { grandparent, parent, child, blockRoot } = chain()
  const v1 = Utils.toHex(child.toBEEF())
  const ours = decode(v1)
  assert.equal(ours.version, 1)
  assert.equal(ours.hex, v1)
  assertSameBeef(ours, Beef.fromString(v1), 'V1')
  assert.equal(ours.structure.valid, true)
  assert.deepEqual(ours.structure.roots, { 812345: blockRoot })
  assert.equal(ours.bumps[0].roots[0].root, grandparent.merklePath.computeRoot(grandparent.id('hex')))

  // Ours as V2 and as Atomic BEEF, read by the SDK.
  const asV2 = Beef.fromString(ours.v2)
  assert.equal(asV2.version, 4022206466)
  assertSameBeef(ours, asV2, 'ours as V2')
  assert.equal(asV2.isValid(), true)
  assert.equal(Transaction.fromAtomicBEEF(Utils.toArray(ours.atomic, 'hex')).id('hex'), child.id('hex'))

  // The SDK's V2 and Atomic BEEF, read by ours.
  const beef = new Beef()
  beef.mergeTransaction(child)
  const v2 = beef.toHex()
  const ours2 = decode(v2)
  assert.equal(ours2.version, 2)
  assert.equal(ours2.hex, v2)
  assertSameBeef(ours2, beef, 'V2')
  assert.equal(Beef.fromString(ours2.v1).isValid(), true)
  const atomic = Utils.toHex(child.toAtomicBEEF())
  const ours3 = decode(atomic)
  assert.equal(ours3.subject, child.id('hex'))
  assert.equal(ours3.hex, atomic)
  assert.equal(ours3.structure.valid, true)
  assert.equal(Utils.toHex(Transaction.fromAtomicBEEF(Utils.toArray(ours3.hex, 'hex')).toAtomicBEEF()), atomic)

  // A txid-only entry (V2): the parent's parent is known; V1 cannot say so.
  const known = new Beef()
  known.mergeTransaction(child)
  known.makeTxidOnly(grandparent.id('hex'))
  const ours4 = decode(known.toHex())
  assert.equal(ours4.hex, known.toHex())
  assertSameBeef(ours4, known, 'txid-only')
  assert.equal(ours4.v1, null)
  assert.equal(ours4.structure.valid, Beef.fromString(known.toHex()).isValid(true))
  assert.equal(ours4.structure.valid, true)
  // The SDK wrote the child before its parent here; what ours writes has parents first.
  const sorted = Beef.fromString(ours4.v2)
  assert.deepEqual(sorted.txs.map(t => t.txid), [grandparent.id('hex'), parent.id('hex'), child.id('hex')])

  // A missing parent: both refuse the structure.
  const holed = new Beef()
  holed.mergeTransaction(child)
  holed.removeExistingTxid(parent.id('hex'))
  // (Read back from bytes: the in-memory Beef knows its inputs by source transaction only.)
  assert.equal(Beef.fromString(holed.toHex()).isValid(), false)
  const ours5 = decode(holed.toHex())
  assert.equal(ours5.structure.valid, false)
  assert.match(ours5.structure.error, /neither proven nor in the BEEF/)
})

test('malformed input is refused with a message, never a crash', () => {
  const { child } = chain()
  const v1 = Utils.toHex(child.toBEEF())
  assert.match(decodeError(v1.slice(0, v1.length - 10)), /malformed BEEF/)
  assert.match(decodeError(v1 + '00'), /unexpected bytes after the end/)
  assert.match(decodeError('0200beef' + 'ff'.repeat(9)), /malformed BEEF/)
  assert.match(decodeError('01000000' + 'fe00000001', 'tx'), /cannot fit/)
})
