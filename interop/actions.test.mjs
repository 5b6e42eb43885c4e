// Receive and pay, live against the reference TypeScript SDK (@bsv/sdk 2.1.0): a sender's
// ProtoWallet pays `mpc-wallet serve` (the MPC wallet, embedded default) with BRC-29 in a
// transaction whose parent sits in a block only this test's chain tracker knows; the wallet
// takes it in through HTTPWalletJSON (internalizeAction), lists it, and pays a third party
// (createAction), which @bsv/sdk verifies: BEEF structure and roots, scripts, amounts and the fee
// at the configured rate. ARC and WhatsOnChain are stand-ins on 127.0.0.1 that speak their APIs
// and check every transaction they are handed with @bsv/sdk. Uses target/debug/mpc-wallet.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Beef, HTTPWalletJSON, P2PKH, PrivateKey, SatoshisPerKilobyte, Transaction, Utils } from '@bsv/sdk'
import { run, startServe, stop } from './serve.mjs'
import { brc29Payment, mine, minedParent, nextHeight, startStandIns } from './standins.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = process.env.MPC_WALLET_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'mpc-wallet')
const dir = mkdtempSync(join(tmpdir(), 'mpc-actions-'))
const ORIGIN = 'http://localhost'
const TOKEN = randomBytes(32).toString('hex')
const ARC_KEY = 'arc-key-' + randomBytes(8).toString('hex')
const FEE_RATE = 50

let standIns, arc, woc, tracker, serve, wallet, identity

const walletVars = () => ({
    MPC_WALLET_ID: 'actions',
    MPC_SHARE_SECRET: 'actions interop secret',
    MPC_STORAGE_PATH: join(dir, 'agent.db'),
    MPC_ALLOWED_ORIGINS: ORIGIN,
    MPC_API_TOKEN: TOKEN,
    MPC_ARC_URL: standIns.arcUrl,
    MPC_ARC_API_KEY: ARC_KEY,
    MPC_CHAIN_TRACKER_URL: standIns.wocUrl,
    MPC_FEE_SAT_PER_KB: String(FEE_RATE),
    MPC_BACKGROUND_INTERVAL_SECS: '1',
    MPC_PROOF_INTERVAL_SECS: '1',
    MPC_PROOF_ATTEMPTS: '2',
    MPC_REVIEW_INTERVAL_SECS: '1',
    // One change output a payment, so the counts below follow the outputs one by one; the split
    // toward a larger target is consolidate.test.mjs's and brc100/tests/consolidate.rs's.
    MPC_CHANGE_TARGET_COUNT: '1'
})

const startWallet = (extraEnv = {}) => startServe(bin, { ...walletVars(), ...extraEnv })

/** Runs `mpc-wallet ...args` on this wallet's store (beside the running serve); resolves to { code, out, err }. */
const cli = args => run(bin, args, walletVars())

const connect = url => new HTTPWalletJSON('localhost', url, (u, init = {}) =>
  fetch(u, { ...init, headers: { ...init.headers, Authorization: `Bearer ${TOKEN}` } }))

before(async () => {
  standIns = await startStandIns({ arcKey: ARC_KEY });
  ({ arc, woc, tracker } = standIns)
  serve = await startWallet()
  wallet = connect(serve.url)
  identity = (await wallet.getPublicKey({ identityKey: true })).publicKey
})

after(async () => {
  if (serve) await stop(serve.child)
  standIns?.close()
  rmSync(dir, { recursive: true, force: true })
})

const payment = (sats, options) => brc29Payment(identity, sats, woc, options)

const internalize = (p, extra = {}) => wallet.internalizeAction({
  tx: p.tx.toAtomicBEEF(),
  outputs: [{ outputIndex: 0, protocol: 'wallet payment', paymentRemittance: p.remittance }],
  description: 'funding from @bsv/sdk',
  labels: ['funding'],
  ...extra
})

/** Resolves once `check()` holds; fails after `seconds`. */
async function until (check, what, seconds = 60) {
  for (let i = 0; i < seconds * 5; i++) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  assert.fail(`timed out waiting until ${what}`)
}

const change = async () => (await wallet.listOutputs({ basket: 'default', limit: 10000 }))
const thirdParty = () => new P2PKH().lock(PrivateKey.fromRandom().toAddress()).toHex()

/** @bsv/sdk's verdict on an Atomic BEEF the wallet returned: BEEF roots, then scripts, amounts and fee. */
async function sdkVerifies (atomic) {
  const beef = Beef.fromBinary(atomic)
  assert.equal(await beef.verify(tracker, false), true, 'Beef.verify')
  const tx = Transaction.fromAtomicBEEF(atomic)
  assert.equal(await tx.verify(tracker, new SatoshisPerKilobyte(FEE_RATE)), true, 'Transaction.verify')
  // The fee at the configured rate, computed by @bsv/sdk over the signed size.
  const paid = tx.inputs.reduce((s, i) => s + i.sourceTransaction.outputs[i.sourceOutputIndex].satoshis, 0) -
    tx.outputs.reduce((s, o) => s + o.satoshis, 0)
  assert.ok(paid >= await new SatoshisPerKilobyte(FEE_RATE).computeFee(tx), `fee ${paid} below the rate`)
  return { beef, tx }
}

let funding

test('a BRC-29 payment is taken in and listed', async () => {
  funding = await payment(100_000)
  const r = await internalize(funding)
  assert.equal(r.accepted, true)
  assert.ok(arc.accepted.includes(funding.tx.id('hex')), 'the new transaction was broadcast')
  const outs = await wallet.listOutputs({ basket: 'default', include: 'locking scripts' })
  assert.equal(outs.totalOutputs, 1)
  assert.equal(outs.outputs[0].satoshis, 100_000)
  assert.equal(outs.outputs[0].outpoint, `${funding.tx.id('hex')}.0`)
  assert.equal(outs.outputs[0].lockingScript, funding.tx.outputs[0].lockingScript.toHex())
  const acts = await wallet.listActions({ labels: ['funding'], includeLabels: true })
  assert.equal(acts.totalActions, 1)
  assert.equal(acts.actions[0].txid, funding.tx.id('hex'))
  assert.equal(acts.actions[0].isOutgoing, false)
  assert.equal(acts.actions[0].satoshis, 100_000)
  assert.deepEqual(acts.actions[0].labels, ['funding'])
})

test('the same payment twice is counted once', async () => {
  assert.equal((await internalize(funding)).accepted, true)
  const outs = await change()
  assert.equal(outs.totalOutputs, 1)
  assert.equal(outs.outputs[0].satoshis, 100_000)
})

test('a wrong remittance, an unknown root or a bad script is refused and stores nothing', async () => {
  const wrong = await payment(5_000)
  wrong.remittance = { ...wrong.remittance, derivationSuffix: Utils.toBase64(Array.from(randomBytes(10))) }
  await assert.rejects(internalize(wrong), e => e.code === 6 && /paymentRemittance/.test(e.message))
  await assert.rejects(internalize(await payment(5_000, { known: false })), e => e.code === 6 && /merkle root/.test(e.message))
  await assert.rejects(internalize(await payment(5_000, { badSignature: true })), e => e.code === 6 && /does not verify/.test(e.message))
  assert.equal((await change()).totalOutputs, 1)
  assert.equal((await wallet.listActions({ labels: ['funding'] })).totalActions, 1)
})

let firstPayment

test('createAction pays a third party; @bsv/sdk verifies scripts, amounts and fee', async () => {
  const sentBefore = arc.accepted.length
  const r = await wallet.createAction({
    description: 'pay a third party',
    outputs: [{ lockingScript: thirdParty(), satoshis: 20_000, outputDescription: 'to a third party' }],
    labels: ['payout']
  })
  assert.match(r.txid, /^[0-9a-f]{64}$/)
  const { tx } = await sdkVerifies(r.tx)
  assert.equal(tx.id('hex'), r.txid)
  assert.equal(arc.accepted.length, sentBefore + 1)
  assert.equal(arc.accepted.at(-1), r.txid)
  firstPayment = r.txid
  // The change came back to the wallet, and the funding output is spent.
  const outs = await change()
  assert.equal(outs.totalOutputs, 1)
  assert.equal(outs.outputs[0].outpoint.split('.')[0], r.txid)
  const acts = await wallet.listActions({ labels: ['payout'], includeOutputs: true })
  assert.equal(acts.actions[0].isOutgoing, true)
  assert.equal(acts.actions[0].status, 'unproven')
})

test('a second payment spends unconfirmed change and its BEEF carries the ancestors', async () => {
  const r = await wallet.createAction({
    description: 'second payment',
    outputs: [{ lockingScript: thirdParty(), satoshis: 10_000, outputDescription: 'to a third party' }],
    options: { randomizeOutputs: false }
  })
  const { beef, tx } = await sdkVerifies(r.tx)
  const txids = beef.txs.map(t => t.txid)
  assert.ok(txids.includes(firstPayment), 'the unproven parent is in the BEEF')
  assert.ok(txids.includes(funding.tx.id('hex')), 'the grandparent is in the BEEF')
  assert.equal(tx.inputs[0].sourceTXID ?? tx.inputs[0].sourceTransaction.id('hex'), firstPayment)
  assert.equal(tx.outputs[0].satoshis, 10_000)
})

test('noSend signs and records but does not broadcast; abortAction releases it', async () => {
  const sentBefore = arc.accepted.length
  const balanceBefore = (await change()).outputs.reduce((s, o) => s + o.satoshis, 0)
  const r = await wallet.createAction({
    description: 'not sent',
    outputs: [{ lockingScript: thirdParty(), satoshis: 1_000, outputDescription: 'held back' }],
    options: { noSend: true }
  })
  assert.equal(arc.accepted.length, sentBefore)
  assert.equal(r.noSendChange.length, 1)
  await sdkVerifies(r.tx)
  assert.deepEqual(await wallet.abortAction({ reference: r.txid }), { aborted: true })
  const after = await change()
  assert.equal(after.outputs.reduce((s, o) => s + o.satoshis, 0), balanceBefore)
  assert.ok(!after.outputs.some(o => o.outpoint.startsWith(r.txid)), 'the aborted change never appears')
})

test('paying more than the balance is code 7 and changes nothing', async () => {
  const before = await change()
  const actionsBefore = (await wallet.listActions({ labels: [] })).totalActions
  const balance = before.outputs.reduce((s, o) => s + o.satoshis, 0)
  await assert.rejects(
    wallet.createAction({
      description: 'too much',
      outputs: [{ lockingScript: thirdParty(), satoshis: balance + 1, outputDescription: 'more than we have' }]
    }),
    e => e.code === 7 && e.moreSatoshisNeeded > 1 && e.totalSatoshisNeeded > balance
  )
  assert.deepEqual(await change(), before)
  assert.equal((await wallet.listActions({ labels: [] })).totalActions, actionsBefore)
})

test('a rejected broadcast loses nothing', async () => {
  const before = await change()
  arc.plan.push([200, 'DOUBLE_SPEND_ATTEMPTED'])
  await assert.rejects(wallet.createAction({
    description: 'will be rejected',
    outputs: [{ lockingScript: thirdParty(), satoshis: 1_000, outputDescription: 'rejected' }]
  }), e => /DOUBLE_SPEND_ATTEMPTED/.test(e.message))
  assert.deepEqual(await change(), before)
})

test('four concurrent payments never spend one output twice', async () => {
  // Four separate funding outputs, so several payments can succeed at once.
  for (let i = 0; i < 3; i++) await internalize(await payment(30_000))
  const results = await Promise.allSettled([0, 1, 2, 3].map(i => wallet.createAction({
    description: `concurrent ${i}`,
    outputs: [{ lockingScript: thirdParty(), satoshis: 5_000, outputDescription: 'concurrent' }]
  })))
  const done = results.filter(r => r.status === 'fulfilled').map(r => r.value)
  for (const r of results.filter(r => r.status === 'rejected')) assert.equal(r.reason.code, 7, String(r.reason))
  assert.ok(done.length >= 2, `${done.length} of 4 payments went through`)
  const spent = done.flatMap(r => Transaction.fromAtomicBEEF(r.tx).inputs.map(i => `${i.sourceTXID ?? i.sourceTransaction.id('hex')}.${i.sourceOutputIndex}`))
  assert.equal(new Set(spent).size, spent.length, 'an output was spent twice')
  for (const r of done) await sdkVerifies(r.tx)
})

test('caller-supplied inputs return a signableTransaction; signAction finishes it', async () => {
  const key = PrivateKey.fromRandom()
  const parent = minedParent(key, 3_000, nextHeight(), woc)
  const inputBEEF = new Beef()
  inputBEEF.mergeTransaction(parent)
  const r = await wallet.createAction({
    description: 'spend a caller input',
    inputBEEF: inputBEEF.toBinary(),
    inputs: [{ outpoint: `${parent.id('hex')}.0`, inputDescription: 'the caller signs', unlockingScriptLength: 108 }],
    outputs: [{ lockingScript: thirdParty(), satoshis: 2_000, outputDescription: 'paid from a caller input' }],
    labels: ['signable']
  })
  assert.equal(r.txid, undefined)
  const unsigned = Transaction.fromAtomicBEEF(r.signableTransaction.tx)
  const index = unsigned.inputs.findIndex(i => (i.sourceTXID ?? i.sourceTransaction.id('hex')) === parent.id('hex'))
  assert.ok(index >= 0)
  const unlockingScript = (await new P2PKH().unlock(key).sign(unsigned, index)).toHex()
  const s = await wallet.signAction({ reference: r.signableTransaction.reference, spends: { [index]: { unlockingScript } } })
  const { tx } = await sdkVerifies(s.tx)
  assert.equal(tx.id('hex'), s.txid)
  assert.ok(arc.accepted.includes(s.txid))
  // A reference is used once.
  await assert.rejects(wallet.signAction({ reference: r.signableTransaction.reference, spends: {} }), e => e.code === 6)
})

test('a delayed broadcast goes out later, and a mined transaction gets its proof', async () => {
  // ARC fails on its side for every attempt of the first broadcast (the plugin tries four times).
  arc.plan.push([503], [503], [503], [503])
  const r = await wallet.createAction({
    description: 'delayed broadcast',
    outputs: [{ lockingScript: thirdParty(), satoshis: 1_000, outputDescription: 'delayed' }],
    labels: ['delayed'],
    options: { acceptDelayedBroadcast: true }
  })
  assert.equal(arc.plan.length, 0)
  assert.ok(!arc.accepted.includes(r.txid))
  const status = async () => (await wallet.listActions({ labels: ['delayed'] })).actions[0].status
  // The background task (every second here) hands it to ARC again.
  await until(() => arc.accepted.includes(r.txid), 'the delayed transaction is rebroadcast')
  await until(async () => await status() === 'unproven', 'the action is unproven')
  arc.mined.set(r.txid, mine(r.txid, nextHeight(), woc).toHex())
  await until(async () => await status() === 'completed', 'the merkle proof is recorded')
  // Its outputs now come with the proof: a BEEF of the change carries the path, not ancestors.
  const outs = await wallet.listOutputs({ basket: 'default', include: 'entire transactions', limit: 10000 })
  const beef = Beef.fromBinary(outs.BEEF)
  assert.equal(await beef.verify(tracker, false), true)
  assert.ok(outs.outputs.some(o => o.outpoint.startsWith(r.txid)), 'its change is listed')
  const proven = beef.txs.find(t => t.txid === r.txid)
  assert.ok(proven?.bumpIndex !== undefined, 'the proven transaction carries its merkle path')
})

test('a reorg: the proof of a dropped block is dropped, the new block\'s recorded; nothing spendable lost', async () => {
  const r = await wallet.createAction({
    description: 'mined, then reorged',
    outputs: [{ lockingScript: thirdParty(), satoshis: 1_000, outputDescription: 'reorged' }],
    labels: ['reorged']
  })
  const status = async () => (await wallet.listActions({ labels: ['reorged'] })).actions[0].status
  const height = async () => {
    const outs = await wallet.listOutputs({ basket: 'default', include: 'entire transactions', limit: 10000 })
    const beef = Beef.fromBinary(outs.BEEF)
    const entry = beef.txs.find(t => t.txid === r.txid)
    return entry?.bumpIndex === undefined ? undefined : beef.bumps[entry.bumpIndex].blockHeight
  }
  const first = nextHeight()
  arc.mined.set(r.txid, mine(r.txid, first, woc).toHex())
  await until(async () => await status() === 'completed', 'the first proof is recorded')
  assert.equal(await height(), first)
  const balance = (await change()).outputs.reduce((s, o) => s + o.satoshis, 0)
  // The reorg: the block at that height is another one now, and the transaction is in a new
  // block at the tip (the proof review looks at blocks near the tip only).
  const tip = woc.tip
  const second = nextHeight()
  woc.tip = second
  try {
    woc.roots.set(first, randomBytes(32).toString('hex'))
    arc.mined.set(r.txid, mine(r.txid, second, woc).toHex())
    await until(async () => await height() === second, 'the proof of the new block replaces the dropped one')
  } finally {
    woc.tip = tip
  }
  assert.equal(await status(), 'completed')
  assert.equal((await change()).outputs.reduce((s, o) => s + o.satoshis, 0), balance, 'nothing spendable lost')
})

test('knownTxids, returnTXIDOnly and noSendChange', async () => {
  const known = funding.tx.id('hex')
  const r = await wallet.createAction({
    description: 'known ancestors',
    outputs: [{ lockingScript: thirdParty(), satoshis: 1_000, outputDescription: 'known' }],
    options: { knownTxids: [known], noSend: true }
  })
  const beef = Beef.fromBinary(r.tx)
  const entry = beef.txs.find(t => t.txid === known)
  assert.ok(entry === undefined || entry.isTxidOnly, 'a known transaction travels as its txid')
  // The unsent transaction's change funds the next one, chained.
  const chained = await wallet.createAction({
    description: 'chained to an unsent one',
    outputs: [{ lockingScript: thirdParty(), satoshis: 1_000, outputDescription: 'chained' }],
    options: { noSendChange: r.noSendChange, returnTXIDOnly: true }
  })
  assert.match(chained.txid, /^[0-9a-f]{64}$/)
  assert.equal(chained.tx, undefined)
  const acts = await wallet.listActions({ labels: [], includeInputs: true, limit: 10000 })
  const spent = acts.actions.find(a => a.txid === chained.txid).inputs.map(i => i.sourceOutpoint)
  assert.ok(spent.includes(r.noSendChange[0]), 'the noSend change was spent first')
  // The chained transaction went out with `r` in its BEEF, so the network knows `r`: the
  // background round's noSend review makes it unproven.
  await until(async () => (await wallet.listActions({ labels: [], limit: 10000 })).actions.find(a => a.txid === r.txid).status === 'unproven',
    'the noSend transaction the network learned is unproven')
})

// The toolbox's special operations (values from @bsv/wallet-toolbox 2.1.26, src/sdk/types.ts).
const specOpWalletBalance = '893b7646de0e1c9f741bd6e9169b76a8847ae34adef7bef1e6a285371206d2e8'
const specOpNoSendActions = 'ac6b20a3bb320adafecd637b25c84b792ad828d3aa510d05dc841481f664277d'
const specOpFailedActions = '97d4eb1e49215e3374cc2c1939a7c43a55e95c7427bf2d45ed63e3b4e0c88153'

test('special operations: the balance, noSend actions aborted (a chained one first), failed actions listed', async () => {
  const outputs = (await change()).outputs
  const b = await wallet.listOutputs({ basket: specOpWalletBalance })
  assert.deepEqual(b.outputs, [])
  assert.equal(b.totalOutputs, outputs.reduce((s, o) => s + o.satoshis, 0), 'totalOutputs is the spendable change')

  const held = await wallet.createAction({
    description: 'held back for the special operation',
    outputs: [{ lockingScript: thirdParty(), satoshis: 1_000, outputDescription: 'not sent' }],
    options: { noSend: true }
  })
  const chained = await wallet.createAction({
    description: 'held back, spending the other one',
    outputs: [{ lockingScript: thirdParty(), satoshis: 1_000, outputDescription: 'not sent either' }],
    options: { noSend: true, noSendChange: held.noSendChange }
  })
  const ours = [held.txid, chained.txid]
  const listed = await wallet.listActions({ labels: [specOpNoSendActions], limit: 10000 })
  assert.ok(listed.actions.every(a => a.status === 'nosend'))
  assert.deepEqual(listed.actions.map(a => a.txid).filter(t => ours.includes(t)), ours)
  const failedBefore = (await wallet.listActions({ labels: [specOpFailedActions] })).totalActions

  const aborted = await wallet.listActions({ labels: [specOpNoSendActions, 'abort'], limit: 10000 })
  assert.deepEqual(aborted.actions.filter(a => ours.includes(a.txid)).map(a => a.status), ['failed', 'failed'])
  const left = await wallet.listActions({ labels: [specOpNoSendActions], limit: 10000 })
  assert.ok(!left.actions.some(a => ours.includes(a.txid)))
  const failed = await wallet.listActions({ labels: [specOpFailedActions], limit: 10000 })
  assert.ok(ours.every(t => failed.actions.some(a => a.txid === t)))
  assert.equal(failed.totalActions, failedBefore + aborted.actions.filter(a => a.status === 'failed').length)
  assert.equal((await wallet.listOutputs({ basket: specOpWalletBalance })).totalOutputs, b.totalOutputs, 'the abort released its inputs')
})

const specOpInvalidChange = '5a76fd430a311f8bc0553859061710a4475c19fed46e2ff95969aa918e612e57'

test('change spent elsewhere: reconcile --utxos --dry-run and specOpInvalidChange find it; release takes it out', async () => {
  const outs = (await change()).outputs
  const victim = outs.find(o => woc.txs.has(o.outpoint.split('.')[0]))
  assert.ok(victim, 'an output of a transaction the network knows')
  const balance = outs.reduce((s, o) => s + o.satoshis, 0)
  assert.equal((await wallet.listOutputs({ basket: specOpInvalidChange })).totalOutputs, 0, 'all unspent so far')
  woc.spentElsewhere.add(victim.outpoint)

  const dry = await cli(['reconcile', '--utxos', '--dry-run'])
  assert.equal(dry.code, 0, dry.err)
  assert.match(dry.out, new RegExp(`spent elsewhere: ${victim.outpoint} ${victim.satoshis} sats: not marked`))
  assert.match(dry.out, /utxos: \d+ checked, 1 spent elsewhere/)
  assert.equal((await change()).outputs.length, outs.length, 'a dry run marks nothing')

  const found = await wallet.listOutputs({ basket: specOpInvalidChange, tags: [] })
  assert.deepEqual(found.outputs.map(o => o.outpoint), [victim.outpoint])
  const released = await wallet.listOutputs({ basket: specOpInvalidChange, tags: ['release'] })
  assert.deepEqual(released.outputs.map(o => [o.outpoint, o.spendable]), [[victim.outpoint, false]])
  const after = (await change()).outputs
  assert.ok(!after.some(o => o.outpoint === victim.outpoint), 'no longer spendable')
  assert.equal(after.reduce((s, o) => s + o.satoshis, 0), balance - victim.satoshis)
  assert.equal((await wallet.listOutputs({ basket: specOpInvalidChange })).totalOutputs, 0)
  const again = await cli(['reconcile', '--utxos'])
  assert.equal(again.code, 0, again.err)
  assert.match(again.out, /utxos: \d+ checked, 0 spent elsewhere/)
})

test('a double-spend answer: the payment stands when the network took it; an input a competitor took is not given back', async () => {
  arc.plan.push([200, 'DOUBLE_SPEND_ATTEMPTED', { taken: true }])
  const r = await wallet.createAction({
    description: 'answered double spend',
    outputs: [{ lockingScript: thirdParty(), satoshis: 1_000, outputDescription: 'taken all the same' }]
  })
  await sdkVerifies(r.tx)
  const acts = (await wallet.listActions({ labels: [], limit: 10000 })).actions
  assert.equal(acts.find(a => a.txid === r.txid).status, 'unproven', 'the chain knows it: it stands')

  // A competitor takes that payment's change; a payment of nearly everything picks it and is refused.
  const outs = (await change()).outputs
  const victim = outs.find(o => o.outpoint.startsWith(r.txid))
  assert.ok(victim, 'its change is spendable')
  woc.spentElsewhere.add(victim.outpoint)
  const total = outs.reduce((s, o) => s + o.satoshis, 0)
  arc.plan.push([200, 'DOUBLE_SPEND_ATTEMPTED'])
  await assert.rejects(wallet.createAction({
    description: 'refused: an input was spent elsewhere',
    outputs: [{ lockingScript: thirdParty(), satoshis: total - 2_000, outputDescription: 'nearly everything' }]
  }), e => /broadcast failed/.test(e.message))
  const after = (await change()).outputs
  assert.ok(!after.some(o => o.outpoint === victim.outpoint), 'the input spent elsewhere did not come back')
  assert.equal(after.reduce((s, o) => s + o.satoshis, 0), total - victim.satoshis, 'every other input came back')
})

test('a noSend transaction someone else broadcast, then mined: unproven, then completed, its change listed', async () => {
  const r = await wallet.createAction({
    description: 'sent by someone else',
    outputs: [{ lockingScript: thirdParty(), satoshis: 1_000, outputDescription: 'paid by another hand' }],
    labels: ['elsewhere'],
    options: { noSend: true }
  })
  const status = async () => (await wallet.listActions({ labels: ['elsewhere'] })).actions[0].status
  assert.equal(await status(), 'nosend')
  assert.ok(!arc.accepted.includes(r.txid), 'the wallet did not broadcast it')
  // Another party hands it to the network.
  woc.learn(Transaction.fromAtomicBEEF(r.tx))
  await until(async () => await status() === 'unproven', 'the background round sees it on the chain')
  arc.mined.set(r.txid, mine(r.txid, nextHeight(), woc).toHex())
  await until(async () => await status() === 'completed', 'its proof is recorded')
  const { tx } = await sdkVerifies(r.tx)
  const paid = tx.outputs.findIndex(o => o.satoshis === 1_000)
  const changeVout = tx.outputs.findIndex((o, i) => i !== paid)
  const listed = await wallet.listOutputs({ basket: 'default', limit: 10000 })
  assert.ok(listed.outputs.some(o => o.outpoint === `${r.txid}.${changeVout}`), 'its change is spendable')
})

test('a payment refused, then found on the chain, comes back: the background round un-fails it', async () => {
  const total = (await change()).outputs.reduce((s, o) => s + o.satoshis, 0)
  arc.plan.push([200, 'DOUBLE_SPEND_ATTEMPTED'])
  await assert.rejects(wallet.createAction({
    description: 'refused, then found',
    outputs: [{ lockingScript: thirdParty(), satoshis: 2_000, outputDescription: 'found later' }]
  }), e => /broadcast failed/.test(e.message))
  assert.equal((await change()).outputs.reduce((s, o) => s + o.satoshis, 0), total, 'everything came back')
  const [txid, tx] = [...arc.refused].at(-1)
  woc.learn(tx)
  await until(async () => (await wallet.listActions({ labels: [], limit: 10000 })).actions.find(a => a.txid === txid)?.status === 'unproven',
    'the refused payment the network took is unproven')
  const fee = tx.inputs.reduce((s, i) => s + i.sourceTransaction.outputs[i.sourceOutputIndex].satoshis, 0) - tx.outputs.reduce((s, o) => s + o.satoshis, 0)
  const after = (await change()).outputs
  assert.equal(after.reduce((s, o) => s + o.satoshis, 0), total - 2_000 - fee, 'its inputs are spent again, its change is back')
  assert.ok(after.some(o => o.outpoint.startsWith(txid)))
  assert.ok(!(await wallet.listActions({ labels: [specOpFailedActions], limit: 10000 })).actions.some(a => a.txid === txid))
})

test('basket insertions with tags and custom instructions; relinquishOutput', async () => {
  const p = await payment(2_000)
  await wallet.internalizeAction({
    tx: p.tx.toAtomicBEEF(),
    outputs: [{ outputIndex: 0, protocol: 'basket insertion', insertionRemittance: { basket: 'Tokens', tags: ['gold', 'Rare'], customInstructions: '{"k":1}' } }],
    description: 'a token arrives',
    labels: ['tokens']
  })
  const out = await wallet.listOutputs({ basket: 'tokens', tags: ['rare'], includeTags: true, includeCustomInstructions: true, includeLabels: true })
  assert.equal(out.totalOutputs, 1)
  assert.deepEqual(out.outputs[0].tags.sort(), ['gold', 'rare'])
  assert.equal(out.outputs[0].customInstructions, '{"k":1}')
  assert.deepEqual(out.outputs[0].labels, ['tokens'])
  assert.equal((await wallet.listOutputs({ basket: 'tokens', tags: ['gold', 'silver'], tagQueryMode: 'all' })).totalOutputs, 0)
  assert.equal((await wallet.listOutputs({ basket: 'tokens', tags: ['gold', 'silver'], tagQueryMode: 'any' })).totalOutputs, 1)
  // Not change: the balance is unchanged, and createAction does not spend it.
  const acts = await wallet.listActions({ labels: ['tokens'], includeOutputs: true, includeOutputLockingScripts: true })
  assert.equal(acts.actions[0].outputs[0].basket, 'tokens')
  assert.equal(acts.actions[0].outputs[0].lockingScript, p.tx.outputs[0].lockingScript.toHex())
  assert.deepEqual(await wallet.relinquishOutput({ basket: 'tokens', output: out.outputs[0].outpoint }), { relinquished: true })
  assert.equal((await wallet.listOutputs({ basket: 'tokens' })).totalOutputs, 0)
  await assert.rejects(wallet.relinquishOutput({ basket: 'tokens', output: out.outputs[0].outpoint }), e => e.code === 6)
  // An output createAction puts in a basket is tracked there.
  const r = await wallet.createAction({
    description: 'keep a token',
    outputs: [{ lockingScript: thirdParty(), satoshis: 500, outputDescription: 'kept in a basket', basket: 'kept', tags: ['mine'] }]
  })
  const kept = await wallet.listOutputs({ basket: 'kept', include: 'locking scripts' })
  assert.equal(kept.totalOutputs, 1)
  assert.equal(kept.outputs[0].outpoint.split('.')[0], r.txid)
  // The wallet's change basket is its own.
  await assert.rejects(wallet.createAction({
    description: 'into the change basket',
    outputs: [{ lockingScript: thirdParty(), satoshis: 500, outputDescription: 'not allowed', basket: 'default' }]
  }), e => e.code === 6 && e.message.includes('basket'))
})

test('getHeight and getHeaderForHeight come from the chain tracker', async () => {
  assert.deepEqual(await wallet.getHeight({}), { height: woc.tip })
  const [height, root] = [...woc.roots.entries()][0]
  const { header } = await wallet.getHeaderForHeight({ height })
  assert.equal(header.length, 160)
  assert.equal(header.slice(72, 136), Utils.toHex(Utils.toArray(root, 'hex').reverse()))
  await assert.rejects(wallet.getHeaderForHeight({ height: 1 }))
})

test('a restart keeps every output', async () => {
  const before = await change()
  const actionsBefore = await wallet.listActions({ labels: [], limit: 10000 })
  await stop(serve.child)
  serve = await startWallet()
  wallet = connect(serve.url)
  assert.deepEqual(await change(), before)
  assert.deepEqual(await wallet.listActions({ labels: [], limit: 10000 }), actionsBefore)
})

test('a crash between signing and recording cannot spend the same output twice', async () => {
  await stop(serve.child)
  // This serve pauses 30 s after signing, before recording: it is killed in that pause.
  serve = await startWallet({ MPC_FAULT_PAUSE_BEFORE_ACTION_COMMIT_MS: '30000' })
  wallet = connect(serve.url)
  const before = await change()
  const pending = wallet.createAction({
    description: 'killed before it is recorded',
    outputs: [{ lockingScript: thirdParty(), satoshis: 1_000, outputDescription: 'never recorded' }]
  }).catch(e => e)
  // Its inputs are reserved before signing; signing takes about a second.
  await until(async () => (await change()).totalOutputs < before.totalOutputs, 'the inputs are reserved')
  const now = (await change()).outputs.map(o => o.outpoint)
  const held = before.outputs.map(o => o.outpoint).filter(o => !now.includes(o))
  assert.ok(held.length > 0)
  const sentBefore = arc.accepted.length
  await new Promise(resolve => setTimeout(resolve, 4000))
  serve.child.kill('SIGKILL')
  assert.ok((await pending) instanceof Error, 'the killed payment did not complete')
  serve = await startWallet()
  wallet = connect(serve.url)
  const after = await change()
  for (const o of held) assert.ok(!after.outputs.some(a => a.outpoint === o), `${o} is spendable again after the crash`)
  assert.equal(arc.accepted.length, sentBefore, 'the signed but unrecorded transaction was never broadcast')
  // A payment after the restart never spends what the crashed one held.
  const r = await wallet.createAction({
    description: 'after the crash',
    outputs: [{ lockingScript: thirdParty(), satoshis: 1_000, outputDescription: 'after the crash' }]
  })
  const spent = Transaction.fromAtomicBEEF(r.tx).inputs.map(i => `${i.sourceTXID ?? i.sourceTransaction.id('hex')}.${i.sourceOutputIndex}`)
  for (const o of held) assert.ok(!spent.includes(o), `${o} was spent twice`)
  await sdkVerifies(r.tx)
})

test('a transaction the network lost is broadcast again after MPC_PROOF_ATTEMPTS new blocks without a proof', async () => {
  const r = await wallet.createAction({
    description: 'lost by the network',
    outputs: [{ lockingScript: thirdParty(), satoshis: 1_000, outputDescription: 'lost payment' }],
    labels: ['lost']
  })
  const sent = () => arc.accepted.filter(t => t === r.txid).length
  assert.equal(sent(), 1)
  const status = async () => (await wallet.listActions({ labels: ['lost'] })).actions[0].status
  // The network forgets it; blocks come without it.
  woc.unknown.add(r.txid)
  try {
    for (let i = 0; i < 20 && sent() < 2; i++) {
      woc.tip += 1
      await new Promise(resolve => setTimeout(resolve, 1500))
    }
    assert.equal(sent(), 2, 'broadcast again once past the limit')
    assert.equal(arc.raw.get(r.txid).length > 0, true)
  } finally {
    woc.unknown.delete(r.txid)
  }
  assert.equal(await status(), 'unproven', 'it stands, its proof asked for at the next blocks')
  arc.mined.set(r.txid, mine(r.txid, nextHeight(), woc).toHex())
  await until(async () => await status() === 'completed', 'its proof is recorded')
})
