// The cosigners' spending policy, live against the reference TypeScript SDK (@bsv/sdk 2.1.0):
// `mpc-wallet serve` (the embedded default, whose in-process cosigners read MPC_POLICY_FILE) pays
// under the limits as before; a payment over them is refused with ERR_POLICY_DENIED and nothing
// is spent or reserved; after a person's `mpc-wallet approve` (an approver key the policy pins)
// the same payment goes through, and @bsv/sdk verifies it. ARC and WhatsOnChain are the stand-ins
// of actions.test.mjs. Uses target/debug/mpc-wallet.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Beef, HTTPWalletJSON, P2PKH, PrivateKey, ProtoWallet, SatoshisPerKilobyte, Transaction } from '@bsv/sdk'
import { startServe, stop, testVars } from './serve.mjs'
import { brc29Payment, startStandIns } from './standins.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = process.env.MPC_WALLET_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'mpc-wallet')
const dir = mkdtempSync(join(tmpdir(), 'mpc-policy-'))
const TOKEN = randomBytes(32).toString('hex')
const ARC_KEY = 'arc-key-' + randomBytes(8).toString('hex')
const FEE_RATE = 50
const SECRET = 'policy interop secret'
const policyFile = join(dir, 'policy.toml')
const approverKey = join(dir, 'approver.key')

let standIns, tracker, woc, serve, wallet, identity

/** Runs the wallet binary with `args` and `env`; resolves to { code, out, err } (never blocks the loop). */
const run = (args, env = {}) => new Promise(resolve => {
  execFile(bin, args, { env: { PATH: process.env.PATH, ...testVars(), ...env }, timeout: 120_000 },
    (error, out, err) => resolve({ code: error ? error.code : 0, out, err }))
})

const connect = url => new HTTPWalletJSON('localhost', url, (u, init = {}) =>
  fetch(u, { ...init, headers: { ...init.headers, Authorization: `Bearer ${TOKEN}` } }))

before(async () => {
  standIns = await startStandIns({ arcKey: ARC_KEY });
  ({ tracker, woc } = standIns)
  const keys = await run(['keys', '--approver', '--out', approverKey])
  assert.equal(keys.code, 0, keys.err)
  const approver = keys.out.match(/approver public key: ([0-9a-f]{66})/)[1]
  writeFileSync(policyFile, `max_sats_per_tx = 20000\nmax_sats_per_window = 200000\napprover_keys = ["${approver}"]\n`)
  serve = await startServe(bin, {
    MPC_WALLET_ID: 'policy',
    MPC_SHARE_SECRET: SECRET,
    MPC_STORAGE_PATH: join(dir, 'agent.db'),
    MPC_API_TOKEN: TOKEN,
    MPC_ALLOWED_ORIGINS: 'http://localhost',
    MPC_ARC_URL: standIns.arcUrl,
    MPC_ARC_API_KEY: ARC_KEY,
    MPC_CHAIN_TRACKER_URL: standIns.wocUrl,
    MPC_FEE_SAT_PER_KB: String(FEE_RATE),
    MPC_POLICY_FILE: policyFile
  })
  assert.match(serve.out, /cosigner 1 policy: [0-9a-f]{16} \(per transaction 20000 sats/)
  wallet = connect(serve.url)
  identity = (await wallet.getPublicKey({ identityKey: true })).publicKey
  const p = await brc29Payment(identity, 100_000, woc)
  await wallet.internalizeAction({
    tx: p.tx.toAtomicBEEF(),
    outputs: [{ outputIndex: 0, protocol: 'wallet payment', paymentRemittance: p.remittance }],
    description: 'funding from @bsv/sdk'
  })
})

after(async () => {
  if (serve) await stop(serve.child)
  standIns?.close()
  rmSync(dir, { recursive: true, force: true })
})

const spendable = async () => (await wallet.listOutputs({ basket: 'default', limit: 10000 })).outputs
const pay = (to, satoshis) => ({
  description: 'a payment under a policy',
  outputs: [{ lockingScript: to, satoshis, outputDescription: 'to a third party' }]
})

async function sdkVerifies (atomic) {
  assert.equal(await Beef.fromBinary(atomic).verify(tracker, false), true, 'Beef.verify')
  const tx = Transaction.fromAtomicBEEF(atomic)
  assert.equal(await tx.verify(tracker, new SatoshisPerKilobyte(FEE_RATE)), true, 'Transaction.verify')
  return tx
}

test('a payment under the limits goes through unchanged', async () => {
  const to = new P2PKH().lock(PrivateKey.fromRandom().toAddress()).toHex()
  const r = await wallet.createAction(pay(to, 5_000))
  const tx = await sdkVerifies(r.tx)
  assert.ok(tx.outputs.some(o => o.lockingScript.toHex() === to && o.satoshis === 5_000))
})

test('a payment over the limits is ERR_POLICY_DENIED, spends and reserves nothing, and goes through once approved', async () => {
  const to = new P2PKH().lock(PrivateKey.fromRandom().toAddress()).toHex()
  const before = await spendable()
  // Through HTTPWalletJSON the refusal's words reach the caller...
  await assert.rejects(wallet.createAction(pay(to, 30_000)), e => /spending policy/.test(e.message) && /max_sats_per_tx/.test(e.message))
  // ...and on the wire it is the BRC-100 error shape with its code, the rule and the way out.
  const res = await fetch(`${serve.url}/createAction`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(pay(to, 30_000))
  })
  const body = await res.json()
  assert.equal(res.status, 400)
  assert.equal(body.isError, true)
  assert.equal(body.code, 'ERR_POLICY_DENIED')
  assert.equal(body.rule, 'max_sats_per_tx')
  assert.match(body.approve, /^mpc-wallet approve --wallet policy --to \S+ --sats \d+/)
  assert.deepEqual(await spendable(), before, 'nothing spent or reserved')

  // A person approves it (the payment and its fee, with room for the retry's fee), handing the
  // approval to the cosigners' files.
  const sats = String(Number(body.approve.match(/--sats (\d+)/)[1]) + 100)
  const approved = await run(['approve', '--key', approverKey, '--wallet', 'policy', '--to', to, '--sats', sats, '--data-dir', dir],
    { MPC_POLICY_FILE: policyFile, MPC_SHARE_SECRET: SECRET })
  assert.equal(approved.code, 0, approved.out + approved.err)
  assert.match(approved.out, /embedded cosigner 1: approval kept/)
  const r = await wallet.createAction(pay(to, 30_000))
  const tx = await sdkVerifies(r.tx)
  assert.ok(tx.outputs.some(o => o.lockingScript.toHex() === to && o.satoshis === 30_000))
})

test('under a policy, createSignature with data (BRC-3, BRC-103/104) still signs; a raw hash and 32 bytes of data do not', async () => {
  const data = Array.from(new TextEncoder().encode('POST /pay HTTP/1.1 (what AuthFetch signs)'))
  const protocolID = [2, 'auth message signature']
  const keyID = 'nonce-1 nonce-2'
  const { signature } = await wallet.createSignature({ data, protocolID, keyID, counterparty: 'anyone' })
  // Anyone verifies it against the wallet's identity, with @bsv/sdk.
  const { valid } = await new ProtoWallet('anyone').verifySignature({ data, signature, protocolID, keyID, counterparty: identity })
  assert.equal(valid, true)
  const digest = Array.from(randomBytes(32))
  await assert.rejects(wallet.createSignature({ hashToDirectlySign: digest, protocolID, keyID }), /raw digest/)
  await assert.rejects(wallet.createSignature({ data: digest, protocolID, keyID }), /raw digest/)
})
