// Chain services against stand-ins of ARC and WhatsOnChain on 127.0.0.1 that speak their APIs
// and check what they receive with @bsv/sdk: `mpc-wallet broadcast` submits what @bsv/sdk
// built, `mpc-wallet verify-beef` has the chain tracker confirm a BEEF's roots. Nothing leaves
// 127.0.0.1. Uses target/debug/mpc-wallet.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { body, listen, reply } from './standins.mjs'
import { Beef, Hash, MerklePath, P2PKH, PrivateKey, Transaction, UnlockingScript, Utils } from '@bsv/sdk'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = process.env.MPC_WALLET_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'mpc-wallet')
const API_KEY = 'arc-test-key-' + randomBytes(8).toString('hex')
const hex = n => randomBytes(n).toString('hex')

// ARC stand-in: POST /v1/tx {rawTx}. `arc.plan` is the list of answers still to give (an HTTP
// status and a txStatus); every request is checked and recorded.
const arc = { plan: [], seen: [] }
// WhatsOnChain stand-in: block headers by height.
const woc = { headers: new Map(), tip: 900_000, seen: [] }
let arcUrl, wocUrl, servers

before(async () => {
  const arcServer = await listen(async (req, res) => {
    const text = await body(req)
    const record = { method: req.method, url: req.url, auth: req.headers.authorization, type: req.headers['content-type'], deployment: req.headers['xdeployment-id'] }
    arc.seen.push(record)
    if (req.method !== 'POST' || req.url !== '/v1/tx') return reply(res, 404, { detail: 'no such route' })
    if (req.headers.authorization !== `Bearer ${API_KEY}`) return reply(res, 401, { title: 'Unauthorized', detail: 'bad API key' })
    // What @bsv/sdk makes of the body: Extended Format, else a V1 BEEF.
    const { rawTx } = JSON.parse(text)
    let tx
    try {
      tx = rawTx.startsWith('0100beef') ? Transaction.fromHexBEEF(rawTx) : Transaction.fromHexEF(rawTx)
    } catch (e) {
      return reply(res, 461, { status: 461, title: 'Malformed transaction', detail: `@bsv/sdk cannot read it: ${e.message}` })
    }
    record.txid = tx.id('hex')
    const [status, txStatus, extraInfo] = arc.plan.shift() ?? [200, 'SEEN_ON_NETWORK', '']
    if (status !== 200) return reply(res, status, { status, title: 'stand-in', detail: `planned ${status}` })
    reply(res, 200, { txid: record.txid, txStatus, extraInfo, blockHash: '', blockHeight: 0 })
  })
  const wocServer = await listen((req, res) => {
    woc.seen.push(req.url)
    const m = req.url.match(/^\/block\/(\d+)\/header$/)
    if (m) {
      const merkleroot = woc.headers.get(Number(m[1]))
      if (merkleroot == null) return reply(res, 404, { error: 'unknown block' })
      return reply(res, 200, { hash: hex(32), height: Number(m[1]), version: 536870912, merkleroot, time: 1700000000, nonce: 1, bits: '1d00ffff', previousblockhash: hex(32) })
    }
    if (req.url === '/block/headers') return reply(res, 200, [{ height: woc.tip }])
    reply(res, 404, {})
  })
  servers = [arcServer, wocServer]
  arcUrl = `http://127.0.0.1:${arcServer.address().port}`
  wocUrl = `http://127.0.0.1:${wocServer.address().port}`
})

after(() => servers.forEach(s => s.close()))

/** Runs mpc-wallet with the stand-ins configured; resolves to { code, out, err }. */
function run (args, input) {
  return new Promise(resolve => {
    const child = execFile(bin, args, {
      env: { PATH: process.env.PATH, MPC_ARC_URL: arcUrl, MPC_ARC_API_KEY: API_KEY, MPC_CHAIN_TRACKER_URL: wocUrl },
      encoding: 'utf8'
    }, (error, out, err) => resolve({ code: error ? error.code : 0, out, err }))
    child.stdin.end(input)
  })
}

const unlocking = () => new UnlockingScript().writeBin(Array.from(randomBytes(71))).writeBin(Array.from(randomBytes(33)))

/** A mined parent (its merkle path in block `height`) and a child spending it. */
function mined (height) {
  const parent = new Transaction()
  parent.addInput({ sourceTXID: hex(32), sourceOutputIndex: 0, unlockingScript: unlocking(), sequence: 0xffffffff })
  parent.addOutput({ lockingScript: new P2PKH().lock(PrivateKey.fromRandom().toAddress()), satoshis: 9000 })
  const sibling = hex(32)
  parent.merklePath = new MerklePath(height, [[{ offset: 0, hash: parent.id('hex'), txid: true }, { offset: 1, hash: sibling }]])
  const child = new Transaction()
  child.addInput({ sourceTransaction: parent, sourceOutputIndex: 0, unlockingScript: unlocking(), sequence: 0xffffffff })
  child.addOutput({ lockingScript: new P2PKH().lock(PrivateKey.fromRandom().toAddress()), satoshis: 8000 })
  const blockRoot = Utils.toHex(Hash.hash256([...Utils.toArray(parent.id('hex'), 'hex').reverse(), ...Utils.toArray(sibling, 'hex').reverse()]).reverse())
  return { parent, child, blockRoot }
}

test('broadcast: what @bsv/sdk built reaches ARC as it expects, and ARC\'s answers become named errors', async () => {
  const { child } = mined(800_001)
  // Extended Format, accepted.
  let r = await run(['broadcast', '-'], child.toHexEF())
  assert.equal(r.code, 0, r.err)
  assert.match(r.out, new RegExp(`^txid: ${child.id('hex')}$`, 'm'))
  assert.match(r.out, /^status: SEEN_ON_NETWORK$/m)
  const seen = arc.seen.at(-1)
  assert.equal(seen.txid, child.id('hex'))
  assert.equal(seen.type, 'application/json')
  assert.match(seen.deployment, /^mpc-wallet-/)
  // A V1 BEEF, accepted too.
  r = await run(['broadcast', '-'], Utils.toHex(child.toBEEF()))
  assert.equal(r.code, 0, r.err)
  assert.equal(arc.seen.at(-1).txid, child.id('hex'))
  // HTTP 200 with a refusing txStatus: rejected, with ARC's detail.
  for (const [txStatus, extra] of [['DOUBLE_SPEND_ATTEMPTED', 'competing tx'], ['REJECTED', 'fee too low'], ['SEEN_IN_ORPHAN_MEMPOOL', '']]) {
    arc.plan.push([200, txStatus, extra])
    r = await run(['broadcast', '-'], child.toHexEF())
    assert.notEqual(r.code, 0)
    assert.match(r.err, new RegExp(txStatus))
    if (extra) assert.match(r.err, new RegExp(extra))
  }
  // 5xx twice, then accepted: retried.
  const before = arc.seen.length
  arc.plan.push([503], [502])
  r = await run(['broadcast', '-'], child.toHexEF())
  assert.equal(r.code, 0, r.err)
  assert.equal(arc.seen.length - before, 3)
  // A 4xx is not retried, and says what ARC said.
  const before4 = arc.seen.length
  arc.plan.push([465])
  r = await run(['broadcast', '-'], child.toHexEF())
  assert.notEqual(r.code, 0)
  assert.match(r.err, /planned 465/)
  assert.equal(arc.seen.length - before4, 1)
  // Bytes @bsv/sdk cannot read: ARC's own 461 comes back.
  r = await run(['broadcast', '-'], '0100000000')
  assert.notEqual(r.code, 0)
  assert.match(r.err, /cannot read it/)
})

test('broadcast: a wrong API key is refused as unauthorized, and the key is never printed', async () => {
  const { child } = mined(800_002)
  const r = await new Promise(resolve => {
    const c = execFile(bin, ['broadcast', '-'], {
      env: { PATH: process.env.PATH, MPC_ARC_URL: arcUrl, MPC_ARC_API_KEY: 'wrong-key-123', MPC_LOG: 'debug' },
      encoding: 'utf8'
    }, (error, out, err) => resolve({ code: error ? error.code : 0, out, err }))
    c.stdin.end(child.toHexEF())
  })
  assert.notEqual(r.code, 0)
  assert.match(r.err, /unauthorized|MPC_ARC_API_KEY/i)
  assert.doesNotMatch(r.out + r.err, /wrong-key-123/)
})

test('verify-beef: the chain tracker confirms every root; a wrong or unknown root fails', async () => {
  const { child, blockRoot } = mined(812_345)
  const v1 = Utils.toHex(child.toBEEF())
  woc.headers.set(812_345, blockRoot)
  let r = await run(['verify-beef', '-'], v1)
  assert.equal(r.code, 0, r.err)
  assert.match(r.out, /^valid: true$/m)
  assert.ok(woc.seen.includes('/block/812345/header'))
  // Atomic BEEF and V2 too.
  const beef = new Beef()
  beef.mergeTransaction(child)
  for (const input of [Utils.toHex(child.toAtomicBEEF()), beef.toHex()]) {
    r = await run(['verify-beef', '-'], input)
    assert.equal(r.code, 0, r.err)
  }
  // The tracker knows another root for that height.
  woc.headers.set(812_345, hex(32))
  r = await run(['verify-beef', '-'], v1)
  assert.notEqual(r.code, 0)
  assert.match(r.err, /does not confirm merkle root/)
  // No such block.
  woc.headers.delete(812_345)
  r = await run(['verify-beef', '-'], v1)
  assert.notEqual(r.code, 0)
  // A BEEF missing the parent fails on its structure before any request.
  const holed = new Beef()
  holed.mergeTransaction(child)
  holed.removeExistingTxid(child.inputs[0].sourceTransaction.id('hex'))
  const asked = woc.seen.length
  r = await run(['verify-beef', '-'], holed.toHex())
  assert.notEqual(r.code, 0)
  assert.match(r.err, /neither proven nor in the BEEF/)
  assert.equal(woc.seen.length, asked)
})
