// Consolidation, live against the reference TypeScript SDK (@bsv/sdk 2.1.0): a sender pays
// `mpc-wallet serve` (the MPC wallet, embedded default) fifty dust outputs in one mined
// transaction, taken in through HTTPWalletJSON; `mpc-wallet consolidate` merges them into fresh
// BRC-29 change, signed with the in-process cosigners under a spending policy whose per-transaction
// limit is far below what is merged (only the fee leaves the wallet). Then listOutputs and
// listActions show fewer outputs, the balance less the fee exactly and an action labelled
// `consolidation`, and @bsv/sdk verifies the transaction the stand-in ARC took: BEEF roots,
// scripts, amounts and the fee at the configured rate. specOpSetWalletChangeParams sets the change
// parameters and refuses bad ones. ARC and WhatsOnChain are the stand-ins of actions.test.mjs.
// Uses target/debug/mpc-wallet (MPC_WALLET_BIN, or under CARGO_TARGET_DIR).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Beef, HTTPWalletJSON, P2PKH, PrivateKey, ProtoWallet, PublicKey, SatoshisPerKilobyte, Transaction, Utils } from '@bsv/sdk'
import { run, startServe, stop } from './serve.mjs'
import { BRC29, mine, minedParent, nextHeight, startStandIns } from './standins.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = process.env.MPC_WALLET_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'mpc-wallet')
const dir = mkdtempSync(join(tmpdir(), 'mpc-consolidate-'))
const TOKEN = randomBytes(32).toString('hex')
const ARC_KEY = 'arc-key-' + randomBytes(8).toString('hex')
const FEE_RATE = 50
const DUST = 100
const COUNT = 50
const policyFile = join(dir, 'policy.toml')
// The toolbox's specOpSetWalletChangeParams (src/sdk/types.ts).
const specOpSetWalletChangeParams = 'a4979d28ced8581e9c1c92f1001cc7cb3aabf8ea32e10888ad898f0a509a3929'

let standIns, arc, woc, tracker, serve, wallet, identity

const walletVars = () => ({
  MPC_WALLET_ID: 'consolidate',
  MPC_SHARE_SECRET: 'consolidate interop secret',
  MPC_STORAGE_PATH: join(dir, 'agent.db'),
  MPC_ALLOWED_ORIGINS: 'http://localhost',
  MPC_API_TOKEN: TOKEN,
  MPC_ARC_URL: standIns.arcUrl,
  MPC_ARC_API_KEY: ARC_KEY,
  MPC_CHAIN_TRACKER_URL: standIns.wocUrl,
  MPC_FEE_SAT_PER_KB: String(FEE_RATE),
  MPC_POLICY_FILE: policyFile
})

/** Runs `mpc-wallet ...args` on this wallet's store (beside the running serve); resolves to { code, out, err }. */
const cli = args => run(bin, args, walletVars())

const connect = url => new HTTPWalletJSON('localhost', url, (u, init = {}) =>
  fetch(u, { ...init, headers: { ...init.headers, Authorization: `Bearer ${TOKEN}` } }))

before(async () => {
  standIns = await startStandIns({ arcKey: ARC_KEY });
  ({ arc, woc, tracker } = standIns)
  // Far below the 5000 sats merged: a consolidation passes only because its change is claimed.
  writeFileSync(policyFile, 'max_sats_per_tx = 1000\n')
  serve = await startServe(bin, walletVars())
  assert.match(serve.out, /policy: [0-9a-f]{16} \(per transaction 1000 sats/)
  wallet = connect(serve.url)
  identity = (await wallet.getPublicKey({ identityKey: true })).publicKey
})

after(async () => {
  if (serve) await stop(serve.child)
  standIns?.close()
  rmSync(dir, { recursive: true, force: true })
})

const change = async () => (await wallet.listOutputs({ basket: 'default', limit: 10000 }))
const sum = outs => outs.outputs.reduce((s, o) => s + o.satoshis, 0)

test(`${COUNT} dust outputs of ${DUST} sats, paid in one mined transaction, are taken in`, async () => {
  const senderKey = PrivateKey.fromRandom()
  const sender = new ProtoWallet(senderKey)
  const senderIdentityKey = (await sender.getPublicKey({ identityKey: true })).publicKey
  const parent = minedParent(senderKey, COUNT * DUST + 1000, nextHeight(), woc)
  const tx = new Transaction()
  tx.addInput({ sourceTransaction: parent, sourceOutputIndex: 0, unlockingScriptTemplate: new P2PKH().unlock(senderKey) })
  const outputs = []
  for (let i = 0; i < COUNT; i++) {
    const derivationPrefix = Utils.toBase64(Array.from(randomBytes(10)))
    const derivationSuffix = Utils.toBase64(Array.from(randomBytes(10)))
    const { publicKey } = await sender.getPublicKey({ protocolID: BRC29, keyID: `${derivationPrefix} ${derivationSuffix}`, counterparty: identity })
    tx.addOutput({ lockingScript: new P2PKH().lock(PublicKey.fromString(publicKey).toAddress()), satoshis: DUST })
    outputs.push({ outputIndex: i, protocol: 'wallet payment', paymentRemittance: { derivationPrefix, derivationSuffix, senderIdentityKey } })
  }
  tx.addOutput({ lockingScript: new P2PKH().lock(senderKey.toAddress()), satoshis: 500 })
  await tx.sign()
  // Mined: the outputs are confirmed, which consolidation asks of what it merges.
  tx.merklePath = mine(tx.id('hex'), nextHeight(), woc)
  const r = await wallet.internalizeAction({ tx: tx.toAtomicBEEF(), outputs, description: 'dust from @bsv/sdk', labels: ['dust'] })
  assert.equal(r.accepted, true)
  const outs = await change()
  assert.equal(outs.totalOutputs, COUNT)
  assert.equal(sum(outs), COUNT * DUST)
})

test('consolidate --dry-run says what it would merge and signs nothing', async () => {
  const sent = arc.accepted.length
  const r = await cli(['consolidate', '--dry-run'])
  assert.equal(r.code, 0, r.err)
  assert.match(r.out, new RegExp(`would merge \\(--dry-run, nothing signed\\): ${COUNT} inputs, ${COUNT * DUST} sats`))
  assert.equal(arc.accepted.length, sent)
  assert.equal((await change()).totalOutputs, COUNT)
})

let merged

test('consolidate merges them: fewer outputs, the balance less the fee exactly; @bsv/sdk verifies it', async () => {
  const r = await cli(['consolidate'])
  assert.equal(r.code, 0, r.err)
  const m = r.out.match(/^merged: (\d+) inputs, (\d+) sats, fee (\d+) sats, into 1 output\(s\) of (\d+) sats$/m)
  assert.ok(m, r.out)
  const [inputs, sats, fee] = m.slice(1, 4).map(Number)
  assert.deepEqual([inputs, sats], [COUNT, COUNT * DUST])
  const txid = r.out.match(/^txid: ([0-9a-f]{64})$/m)[1]
  merged = { txid, fee }

  // The books, through @bsv/sdk's HTTPWalletJSON.
  const outs = await wallet.listOutputs({ basket: 'default', include: 'locking scripts', limit: 10000 })
  assert.equal(outs.totalOutputs, 1, 'fewer outputs')
  assert.equal(sum(outs), COUNT * DUST - fee, 'the balance less the fee, exactly')
  assert.equal(outs.outputs[0].outpoint, `${txid}.0`)
  const acts = await wallet.listActions({ labels: ['consolidation'], includeLabels: true, includeInputs: true, includeOutputs: true })
  assert.equal(acts.totalActions, 1)
  const a = acts.actions[0]
  assert.deepEqual([a.txid, a.description, a.satoshis, a.isOutgoing, a.labels], [txid, 'consolidation', -fee, true, ['consolidation']])
  assert.equal(a.inputs.length, COUNT)
  assert.equal(a.outputs.length, 1)

  // The transaction ARC was handed, checked by @bsv/sdk: BEEF roots, scripts, amounts, the fee.
  assert.ok(arc.accepted.includes(txid), 'broadcast')
  const raw = arc.raw.get(txid)
  const beef = Beef.fromString(raw, 'hex')
  assert.equal(await beef.verify(tracker, false), true, 'Beef.verify')
  const tx = Transaction.fromHexBEEF(raw)
  assert.equal(tx.id('hex'), txid)
  assert.equal(await tx.verify(tracker, new SatoshisPerKilobyte(FEE_RATE)), true, 'Transaction.verify')
  assert.equal(tx.inputs.length, COUNT)
  assert.equal(tx.outputs.length, 1)
  assert.equal(tx.outputs[0].lockingScript.toHex(), outs.outputs[0].lockingScript)
  const paid = tx.inputs.reduce((s, i) => s + i.sourceTransaction.outputs[i.sourceOutputIndex].satoshis, 0) - tx.outputs[0].satoshis
  assert.equal(paid, fee)
  assert.ok(paid >= await new SatoshisPerKilobyte(FEE_RATE).computeFee(tx), `fee ${paid} below the rate`)
})

test('nothing more is worth merging; the policy that let the consolidation through refuses a payment of 2000 sats', async () => {
  const r = await cli(['consolidate'])
  assert.equal(r.code, 0, r.err)
  assert.match(r.out, /nothing worth merging/)
  assert.equal((await wallet.listActions({ labels: ['consolidation'] })).totalActions, 1)
  assert.equal(sum(await change()), COUNT * DUST - merged.fee)
  // The limit bites: money leaving the wallet is counted, only the consolidation's change was not.
  const to = new P2PKH().lock(PrivateKey.fromRandom().toAddress()).toHex()
  await assert.rejects(wallet.createAction({
    description: 'over the policy',
    outputs: [{ lockingScript: to, satoshis: 2_000, outputDescription: 'to a third party' }]
  }), e => /spending policy/.test(e.message) && /max_sats_per_tx/.test(e.message))
  assert.equal(sum(await change()), COUNT * DUST - merged.fee, 'nothing spent or reserved')
})

test('specOpSetWalletChangeParams sets the change parameters and refuses bad ones', async () => {
  const r = await wallet.listOutputs({ basket: specOpSetWalletChangeParams, tags: ['2', '500'] })
  assert.deepEqual([r.totalOutputs, r.outputs], [0, []])
  for (const tags of [['0', '500'], ['2', '0'], ['2'], ['two', '500']]) {
    await assert.rejects(wallet.listOutputs({ basket: specOpSetWalletChangeParams, tags }), e => e.code === 6 && /tags/.test(e.message), JSON.stringify(tags))
  }
})
