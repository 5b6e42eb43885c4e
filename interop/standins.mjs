// Stand-ins for the outside services the wallet talks to, on 127.0.0.1, speaking their APIs and
// checking what they receive with @bsv/sdk: ARC (POST /v1/tx, GET /v1/tx/{txid}) and
// WhatsOnChain (block headers by height, the tip, POST /txs/status, GET /script/{hash}/unspent/all,
// /script/{hash}/used and /tx/{txid}/hex over the transactions ARC took). Also what a BSV app's sender does to pay the
// wallet with BRC-29 (`brc29Payment`). Used by interop/actions.test.mjs and
// examples/pay-receive.
import { createServer } from 'node:http'
import { randomBytes } from 'node:crypto'
import { Hash, MerklePath, P2PKH, PrivateKey, ProtoWallet, PublicKey, Transaction, UnlockingScript, Utils } from '@bsv/sdk'

export const BRC29 = [2, '3241645161d8']
let lastHeight = 800_000
/** A block height no other block of this process has. */
export const nextHeight = () => ++lastHeight
const hex = n => randomBytes(n).toString('hex')

/** An HTTP server on 127.0.0.1 at a free port. */
export function listen (handler) {
  return new Promise(resolve => {
    const s = createServer(handler)
    s.listen(0, '127.0.0.1', () => resolve(s))
  })
}

/** A request's body as text. */
export const body = req => new Promise(resolve => {
  let b = ''
  req.on('data', d => { b += d })
  req.on('end', () => resolve(b))
})

/** Answers `json` with `status`. */
export function reply (res, status, json) {
  res.writeHead(status, { 'Content-Type': 'application/json' })
  res.end(JSON.stringify(json))
}

/**
 * Starts both stand-ins. `arc.plan` holds answers still to give ([httpStatus, txStatus, { taken }]);
 * `arc.accepted` lists the txids taken (`arc.raw` maps each to the hex it came as; `arc.refused`
 * maps txids answered otherwise to their transactions); `arc.mined`
 * maps txids to merkle paths (hex) that GET /v1/tx/{txid} reports (each one set moves `woc.tip`: a new block). `woc.roots` maps heights to merkle roots (display hex).
 * `tracker` is the same knowledge as an @bsv/sdk ChainTracker.
 */
export async function startStandIns ({ arcKey }) {
  // `woc.txs`: what the network knows (txid -> @bsv/sdk Transaction), learned from ARC;
  // `woc.spentElsewhere`: outpoints (`txid.vout`) a transaction the wallet never saw spent;
  // `woc.unknown`: txids WhatsOnChain pretends not to know.
  const woc = { roots: new Map(), tip: 900_000, txs: new Map(), spentElsewhere: new Set(), unknown: new Set() }
  // A transaction mined comes with a new block: the tip moves, which is what the wallet's proof
  // task waits for before it asks for proofs.
  class Blocks extends Map {
    set (txid, path) {
      woc.tip += 1
      return super.set(txid, path)
    }
  }
  const arc = { plan: [], accepted: [], raw: new Map(), mined: new Blocks(), refused: new Map() }
  const learn = tx => {
    if (woc.txs.has(tx.id('hex'))) return
    woc.txs.set(tx.id('hex'), tx)
    for (const i of tx.inputs) if (i.sourceTransaction) learn(i.sourceTransaction)
  }
  woc.learn = learn
  const arcServer = await listen(async (req, res) => {
    if (req.headers.authorization !== `Bearer ${arcKey}`) return reply(res, 401, { title: 'Unauthorized' })
    const state = req.url.match(/^\/v1\/tx\/([0-9a-f]{64})$/)
    if (req.method === 'GET' && state) {
      const path = arc.mined.get(state[1])
      if (path == null) return reply(res, 200, { txid: state[1], txStatus: 'SEEN_ON_NETWORK' })
      return reply(res, 200, { txid: state[1], txStatus: 'MINED', merklePath: path })
    }
    if (req.method !== 'POST' || req.url !== '/v1/tx') return reply(res, 404, { detail: 'no such route' })
    const { rawTx } = JSON.parse(await body(req))
    let tx
    try {
      tx = rawTx.startsWith('0100beef') ? Transaction.fromHexBEEF(rawTx) : Transaction.fromHexEF(rawTx)
    } catch (e) {
      return reply(res, 461, { status: 461, title: 'Malformed transaction', detail: e.message })
    }
    const txid = tx.id('hex')
    let valid = false
    try { valid = await tx.verify('scripts only') } catch { valid = false }
    if (!valid) return reply(res, 200, { txid, txStatus: 'REJECTED', extraInfo: 'scripts do not verify (stand-in, @bsv/sdk)' })
    // A planned answer may come with { taken: true }: the network took the transaction whatever ARC said.
    const [status, txStatus, { taken = false } = {}] = arc.plan.shift() ?? [200, 'SEEN_ON_NETWORK']
    if (taken) learn(tx)
    if (status !== 200 || txStatus !== 'SEEN_ON_NETWORK') arc.refused.set(txid, tx)
    if (status !== 200) return reply(res, status, { status, title: 'stand-in', detail: `planned ${status}` })
    if (txStatus === 'SEEN_ON_NETWORK') {
      arc.accepted.push(txid)
      arc.raw.set(txid, rawTx)
      learn(tx)
    }
    reply(res, 200, { txid, txStatus, extraInfo: '' })
  })
  const wocServer = await listen(async (req, res) => {
    if (req.method === 'POST' && req.url === '/txs/status') {
      const { txids } = JSON.parse(await body(req))
      return reply(res, 200, txids.map(txid => {
        if (!woc.txs.has(txid) || woc.unknown.has(txid)) return { txid, error: 'unknown' }
        return arc.mined.has(txid) ? { txid, blockhash: hex(32), blockheight: woc.tip, confirmations: 1 } : { txid }
      }))
    }
    const unspent = req.url.match(/^\/script\/([0-9a-f]{64})\/unspent\/all$/)
    if (unspent) {
      const spent = new Set(woc.spentElsewhere)
      for (const tx of woc.txs.values()) {
        for (const i of tx.inputs) spent.add(`${i.sourceTXID ?? i.sourceTransaction.id('hex')}.${i.sourceOutputIndex}`)
      }
      const result = []
      for (const [txid, tx] of woc.txs) {
        if (woc.unknown.has(txid)) continue
        tx.outputs.forEach((o, vout) => {
          const hash = Utils.toHex(Hash.sha256(o.lockingScript.toBinary()).reverse())
          if (hash === unspent[1] && !spent.has(`${txid}.${vout}`)) result.push({ height: 0, tx_pos: vout, tx_hash: txid, value: o.satoshis })
        })
      }
      return reply(res, 200, { script: unspent[1], result, error: '' })
    }
    const used = req.url.match(/^\/script\/([0-9a-f]{64})\/used$/)
    if (used) {
      const paid = [...woc.txs].some(([txid, tx]) => !woc.unknown.has(txid) &&
        tx.outputs.some(o => Utils.toHex(Hash.sha256(o.lockingScript.toBinary()).reverse()) === used[1]))
      return reply(res, 200, paid)
    }
    const raw = req.url.match(/^\/tx\/([0-9a-f]{64})\/hex$/)
    if (raw) {
      const tx = woc.unknown.has(raw[1]) ? undefined : woc.txs.get(raw[1])
      if (tx == null) return reply(res, 404, { error: 'unknown transaction' })
      res.writeHead(200, { 'Content-Type': 'text/plain' })
      return res.end(tx.toHex())
    }
    const m = req.url.match(/^\/block\/(\d+)\/header$/)
    if (m) {
      const merkleroot = woc.roots.get(Number(m[1]))
      if (merkleroot == null) return reply(res, 404, { error: 'unknown block' })
      return reply(res, 200, { hash: hex(32), height: Number(m[1]), version: 536870912, merkleroot, time: 1700000000, nonce: 7, bits: '1d00ffff', previousblockhash: '00'.repeat(31) + '01' })
    }
    if (req.url === '/block/headers') return reply(res, 200, [{ height: woc.tip }])
    reply(res, 404, {})
  })
  const tracker = {
    isValidRootForHeight: async (root, height) => woc.roots.get(height) === root,
    currentHeight: async () => woc.tip
  }
  return {
    arc,
    woc,
    tracker,
    arcUrl: `http://127.0.0.1:${arcServer.address().port}`,
    wocUrl: `http://127.0.0.1:${wocServer.address().port}`,
    close: () => { arcServer.close(); wocServer.close() }
  }
}

/**
 * A block at `height` holding `txid` (second, after a random sibling: @bsv/sdk takes the first
 * transaction of a block for its coinbase, with rules of its own): its merkle path, and its root
 * (display hex), which `woc` learns unless `known` is false.
 */
export function mine (txid, height, woc, known = true) {
  const sibling = hex(32)
  const path = new MerklePath(height, [[{ offset: 0, hash: sibling }, { offset: 1, hash: txid, txid: true }]])
  const pair = Hash.hash256([...Utils.toArray(sibling, 'hex').reverse(), ...Utils.toArray(txid, 'hex').reverse()])
  const root = Utils.toHex(pair.reverse())
  if (known) woc.roots.set(height, root)
  return path
}

/** A transaction mined at `height` (see `mine`) paying `sats` to `key`. */
export function minedParent (key, sats, height, woc, known = true) {
  const parent = new Transaction()
  parent.addInput({
    sourceTXID: hex(32),
    sourceOutputIndex: 0,
    unlockingScript: new UnlockingScript().writeBin(Array.from(randomBytes(71))).writeBin(Array.from(randomBytes(33))),
    sequence: 0xffffffff
  })
  parent.addOutput({ lockingScript: new P2PKH().lock(key.toAddress()), satoshis: sats })
  parent.merklePath = mine(parent.id('hex'), height, woc, known)
  return parent
}

/**
 * A sender's BRC-29 payment of `sats` to `recipient` (an identity key): a fresh sender key, its
 * funds in a new block whose root goes into `woc` (unless `known` is false), the payment
 * as output 0; `badSignature` signs the input with another key. Returns the transaction and
 * the remittance the recipient needs.
 */
export async function brc29Payment (recipient, sats, woc, { height = nextHeight(), known = true, badSignature = false } = {}) {
  const senderKey = PrivateKey.fromRandom()
  const sender = new ProtoWallet(senderKey)
  const senderIdentityKey = (await sender.getPublicKey({ identityKey: true })).publicKey
  const derivationPrefix = Utils.toBase64(Array.from(randomBytes(10)))
  const derivationSuffix = Utils.toBase64(Array.from(randomBytes(10)))
  const { publicKey } = await sender.getPublicKey({ protocolID: BRC29, keyID: `${derivationPrefix} ${derivationSuffix}`, counterparty: recipient })
  const parent = minedParent(senderKey, sats + 1000, height, woc, known)
  const tx = new Transaction()
  tx.addInput({ sourceTransaction: parent, sourceOutputIndex: 0, unlockingScriptTemplate: new P2PKH().unlock(badSignature ? PrivateKey.fromRandom() : senderKey) })
  tx.addOutput({ lockingScript: new P2PKH().lock(PublicKey.fromString(publicKey).toAddress()), satoshis: sats })
  tx.addOutput({ lockingScript: new P2PKH().lock(senderKey.toAddress()), satoshis: 500 })
  await tx.sign()
  return { tx, remittance: { derivationPrefix, derivationSuffix, senderIdentityKey } }
}

/**
 * The wallet of a paid API: ProtoWallet with the one more method @bsv/payment-express-middleware
 * calls, checking each payment as a wallet would (BRC-29 key, scripts) and keeping what it saw.
 */
export class ServerWallet extends ProtoWallet {
  constructor (key) {
    super(key)
    this.payments = []
  }

  async internalizeAction (args) {
    const { derivationPrefix, derivationSuffix, senderIdentityKey } = args.outputs[0].paymentRemittance
    const tx = Transaction.fromAtomicBEEF(args.tx)
    const { publicKey } = await this.getPublicKey({ protocolID: BRC29, keyID: `${derivationPrefix} ${derivationSuffix}`, counterparty: senderIdentityKey, forSelf: true })
    const output = tx.outputs[args.outputs[0].outputIndex]
    const paysUs = output.lockingScript.toHex() === new P2PKH().lock(PublicKey.fromString(publicKey).toAddress()).toHex()
    const scriptsVerify = await tx.verify('scripts only')
    this.payments.push({ txid: tx.id('hex'), satoshis: output.satoshis, paysUs, scriptsVerify, senderIdentityKey, derivationPrefix, derivationSuffix })
    if (!paysUs || !scriptsVerify) throw Object.assign(new Error('the payment does not pay this wallet'), { code: 'ERR_BAD_PAYMENT' })
    return { accepted: true }
  }
}
