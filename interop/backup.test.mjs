// Backup and disaster restore, live: two `mpc-wallet cosigner` processes over HTTP, the agent
// (`mpc-wallet serve`) with stand-in ARC and WhatsOnChain (interop/standins.mjs), payments in
// from @bsv/sdk and out through HTTPWalletJSON. A backup taken while payments run and one taken
// after; the agent's machine wiped (its store and its party key file); `restore-backup` on a
// fresh data directory against the same cosigner processes; hostile backup files refused with
// nothing written.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Beef, HTTPWalletJSON, P2PKH, PrivateKey, Transaction } from '@bsv/sdk'
import { run as runBin, startServe, stop, testVars } from './serve.mjs'
import { brc29Payment, mine, nextHeight, startStandIns } from './standins.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = process.env.MPC_WALLET_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'mpc-wallet')
const dir = mkdtempSync(join(tmpdir(), 'mpc-backup-'))
const TOKEN = 'backup-token-' + randomBytes(8).toString('hex')
const ARC_KEY = 'arc-key-' + randomBytes(8).toString('hex')
const SECRET = 'backup interop secret ' + randomBytes(4).toString('hex')
const JWT = 'backup-jwt-' + randomBytes(16).toString('hex')

let standIns, arc, woc, tracker, cosigners, pub, endpoints, serve, wallet

/** Runs `mpc-wallet ...args` with exactly `env` (plus PATH and the test settings); resolves to { code, out, err }. */
const run = (args, env) => runBin(bin, args, env)

/** Starts a long-running `mpc-wallet ...args`; resolves to { child, url } once it prints `listening: <url>`. */
const listening = (args, env) => new Promise((resolve, reject) => {
  const child = spawn(bin, args, { env: { PATH: process.env.PATH, ...testVars(), ...env } })
  let out = ''
  let err = ''
  child.stderr.on('data', d => { err += d })
  child.stdout.on('data', d => {
    out += d
    const m = out.match(/^listening: (\S+)$/m)
    if (m) resolve({ child, url: m[1] })
  })
  child.on('exit', code => reject(new Error(`exited with ${code}:\n${out}\n${err}`)))
})

const peers = i => [0, 1, 2].filter(j => j !== i).map(j => `${j}=${pub[j]}`).join(',')

/** The agent's variables, its store and party key file in `agentDir`. */
const agentVars = (agentDir, extra = {}) => ({
  MPC_WALLET_ID: 'backup-wallet',
  MPC_SHARE_SECRET: SECRET,
  MPC_JWT_SECRET: JWT,
  MPC_STORAGE_PATH: join(agentDir, 'agent.db'),
  MPC_PARTY_KEY_FILE: join(agentDir, 'party-0.key'),
  MPC_PEER_KEYS: peers(0),
  MPC_COSIGNER_ENDPOINTS: endpoints.join(','),
  MPC_API_TOKEN: TOKEN,
  MPC_ALLOWED_ORIGINS: 'http://localhost',
  MPC_ARC_URL: standIns.arcUrl,
  MPC_ARC_API_KEY: ARC_KEY,
  MPC_CHAIN_TRACKER_URL: standIns.wocUrl,
  MPC_FEE_SAT_PER_KB: '50',
  MPC_BACKGROUND_INTERVAL_SECS: '1',
  MPC_PROOF_INTERVAL_SECS: '1',
  MPC_REVIEW_INTERVAL_SECS: '1',
  ...extra
})

const connect = url => new HTTPWalletJSON('localhost', url, (u, init = {}) =>
  fetch(u, { ...init, headers: { ...init.headers, Authorization: `Bearer ${TOKEN}` } }))

const spendable = async w => (await w.listOutputs({ basket: 'default', limit: 10000 })).outputs
const sum = outs => outs.reduce((s, o) => s + o.satoshis, 0)
const thirdParty = () => new P2PKH().lock(PrivateKey.fromRandom().toAddress()).toHex()
const pay = (w, sats, label) => w.createAction({
  description: 'a payment out',
  outputs: [{ lockingScript: thirdParty(), satoshis: sats, outputDescription: 'a payment' }],
  labels: [label]
})

/** Resolves once `check()` holds; fails after `seconds`. */
async function until (check, what, seconds = 60) {
  for (let i = 0; i < seconds * 5; i++) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  assert.fail(`timed out waiting until ${what}`)
}

const first = join(dir, 'first-machine')
const second = join(dir, 'second-machine')
const backups = join(dir, 'backups')
const whileRunning = join(dir, 'while-payments-run.mpcbackup')
const settled = join(dir, 'settled.mpcbackup')

before(async () => {
  mkdirSync(first)
  standIns = await startStandIns({ arcKey: ARC_KEY });
  ({ arc, woc, tracker } = standIns)
  pub = []
  for (const i of [0, 1, 2]) {
    const keyFile = i === 0 ? join(first, 'party-0.key') : join(dir, `party-${i}.key`)
    const r = await run(['keys', '--out', keyFile], {})
    assert.equal(r.code, 0, r.err)
    pub[i] = r.out.match(/^public key: (\S+)$/m)[1]
  }
  cosigners = []
  for (const i of [1, 2]) {
    cosigners.push(await listening(['cosigner'], {
      MPC_PARTY_INDEX: String(i),
      MPC_HTTP_LISTEN: '127.0.0.1:0',
      MPC_STORAGE_PATH: join(dir, `cosigner-${i}.db`),
      MPC_SHARE_SECRET: SECRET,
      MPC_JWT_SECRET: JWT,
      MPC_PARTY_KEY_FILE: join(dir, `party-${i}.key`),
      MPC_PEER_KEYS: peers(i)
    }))
  }
  endpoints = cosigners.map(c => c.url)
})

after(async () => {
  if (serve) await stop(serve.child)
  for (const c of cosigners ?? []) await stop(c.child)
  standIns?.close()
  rmSync(dir, { recursive: true, force: true })
})

let identity, beforeLoss

test('a backup taken while payments run, another after; scheduled backups keep the newest', async () => {
  serve = await startServe(bin, agentVars(first, { MPC_BACKUP_DIR: backups, MPC_BACKUP_INTERVAL_SECS: '1', MPC_BACKUP_KEEP: '2' }))
  wallet = connect(serve.url)
  identity = (await wallet.getPublicKey({ identityKey: true })).publicKey
  for (const sats of [40_000, 30_000, 20_000]) {
    const p = await brc29Payment(identity, sats, woc)
    const r = await wallet.internalizeAction({
      tx: p.tx.toAtomicBEEF(),
      outputs: [{ outputIndex: 0, protocol: 'wallet payment', paymentRemittance: p.remittance }],
      description: 'funding from @bsv/sdk',
      labels: ['funding']
    })
    assert.equal(r.accepted, true)
  }
  // Three payments out, each a threshold signing with the cosigner processes, while a backup reads the books.
  const [backup, ...paid] = await Promise.all([
    run(['backup', '--out', whileRunning], agentVars(first)),
    pay(wallet, 1_000, 'concurrent'), pay(wallet, 2_000, 'concurrent'), pay(wallet, 3_000, 'concurrent')
  ])
  assert.equal(backup.code, 0, backup.err)
  assert.match(backup.out, /^actions: \d+, outputs: \d+, certificates: 0$/m)
  assert.equal(paid.length, 3)
  await until(async () => (await wallet.listActions({ labels: ['concurrent'] })).actions.every(a => a.status === 'unproven'), 'the payments are out')
  beforeLoss = await spendable(wallet)
  const settledRun = await run(['backup', '--out', settled], agentVars(first))
  assert.equal(settledRun.code, 0, settledRun.err)
  assert.match(settledRun.out, new RegExp(`^identity: ${identity}$`, 'm'))
  const again = await run(['backup', '--out', settled], agentVars(first))
  assert.notEqual(again.code, 0)
  assert.match(again.err, /exists: choose another file name/)
  // Scheduled: one at start, then one a second while the books change, the newest two kept.
  const scheduled = () => readdirSync(backups).filter(f => f.endsWith('.mpcbackup')).sort()
  await until(() => scheduled().length === 2, 'two scheduled backups')
  // Books that do not change get no new backup.
  await new Promise(resolve => setTimeout(resolve, 1500))
  const quiet = scheduled()
  await new Promise(resolve => setTimeout(resolve, 2500))
  assert.deepEqual(scheduled(), quiet, 'no backup while nothing changes')
  assert.ok(quiet.every(f => f.startsWith('backup-wallet-')), quiet.join(' '))
  // A payment received changes them: a new one within seconds, and still the newest two kept.
  // (Received, not paid: the settled backup must still hold every output the wallet can spend.)
  const p = await brc29Payment(identity, 7_000, woc)
  await wallet.internalizeAction({
    tx: p.tx.toAtomicBEEF(),
    outputs: [{ outputIndex: 0, protocol: 'wallet payment', paymentRemittance: p.remittance }],
    description: 'after the quiet'
  })
  await until(() => scheduled().at(-1) !== quiet.at(-1), 'a backup after the change')
  assert.equal(scheduled().length, 2, scheduled().join(' '))
  assert.ok(!readFileSync(settled).includes(Buffer.from(SECRET)), 'the secret is not in the file')
})

test('hostile backup files are refused, nothing written', async () => {
  mkdirSync(second)
  const good = readFileSync(settled)
  const cases = [
    ['truncated', good.subarray(0, good.length - 100), {}, /not an intact mpc-wallet backup/],
    ['edited', Buffer.from(good).map((b, i) => i === Math.floor(good.length / 2) ? b ^ 1 : b), {}, /not an intact mpc-wallet backup/],
    ['random', randomBytes(5000), {}, /not an intact mpc-wallet backup/],
    ['empty', Buffer.alloc(0), {}, /not an intact mpc-wallet backup/],
    ['another wallet', good, { MPC_WALLET_ID: 'another-wallet' }, /backup is of wallet "backup-wallet" and MPC_WALLET_ID is "another-wallet"/],
    ['wrong secret', good, { MPC_SHARE_SECRET: 'not the secret' }, /secret does not open this backup/],
    ['other network', good, { MPC_NETWORK: 'testnet' }, /backup is of a mainnet wallet and MPC_NETWORK is testnet/]
  ]
  for (const [name, bytes, env, message] of cases) {
    const file = join(dir, `hostile-${name.replace(/ /g, '-')}`)
    writeFileSync(file, bytes)
    const r = await run(['restore-backup', file], agentVars(second, env))
    assert.notEqual(r.code, 0, `${name}: ${r.out}`)
    assert.match(r.err, message, name)
    assert.match(r.err, /nothing was written/, name)
    assert.deepEqual(readdirSync(second), [], `${name}: nothing written`)
  }
})

test('cosigners that cannot be reached: the restore is undone, and runs once they can', async () => {
  const third = join(dir, 'third-machine')
  const down = agentVars(third, { MPC_COSIGNER_ENDPOINTS: 'http://127.0.0.1:9,http://127.0.0.1:9' })
  const r = await run(['restore-backup', settled], down)
  assert.notEqual(r.code, 0, r.out)
  assert.match(r.err, /the restore was undone: the store is as it was/)
  const ok = await run(['restore-backup', settled], agentVars(third))
  assert.equal(ok.code, 0, `${ok.out}\n${ok.err}`)
  assert.match(ok.out, new RegExp(`^identity: ${identity}$`, 'm'))
})

test('the agent\'s machine is lost; restored from the backup taken while payments ran, the later change found on the chain', async () => {
  await stop(serve.child)
  serve = undefined
  rmSync(first, { recursive: true, force: true })
  // Time passes: every transaction the lost machine broadcast is mined.
  for (const txid of arc.accepted) if (!arc.mined.has(txid)) arc.mined.set(txid, mine(txid, nextHeight(), woc).toHex())
  const r = await run(['restore-backup', whileRunning], agentVars(second))
  assert.equal(r.code, 0, `${r.out}\n${r.err}`)
  assert.match(r.err, /wrote the agent's party key from the backup/)
  assert.doesNotMatch(r.err, /keygen|aux info/, 'no DKG')
  assert.match(r.out, new RegExp(`^identity: ${identity}$`, 'm'))
  assert.match(r.out, /^reconcile: recover: \d+ change keys asked after, \d+ outputs the books lacked recorded \(\d+ sats\)$/m)
  assert.match(r.out, /^restored: the wallet is ready/m)
  serve = await startServe(bin, agentVars(second))
  try {
    wallet = connect(serve.url)
    assert.equal((await wallet.getPublicKey({ identityKey: true })).publicKey, identity, 'same identity')
    // Every output the wallet could spend before the loss, the change of payments signed after
    // the backup included (their keys are found again), and nothing else.
    const now = await spendable(wallet)
    assert.deepEqual(now.map(o => o.outpoint).sort(), beforeLoss.map(o => o.outpoint).sort(), r.out)
    assert.equal(sum(now), sum(beforeLoss), 'same balance')
  } finally {
    await stop(serve.child)
    serve = undefined
  }
})

test('the settled backup restores the same balance, once however often; a payment works', async () => {
  const r = await run(['restore-backup', settled], agentVars(second))
  assert.equal(r.code, 0, `${r.out}\n${r.err}`)
  const again = await run(['restore-backup', settled], agentVars(second))
  assert.equal(again.code, 0, `${again.out}\n${again.err}`)
  assert.match(again.out, /^imported: 0 of \d+ actions, 0 of \d+ outputs/m)
  serve = await startServe(bin, agentVars(second))
  wallet = connect(serve.url)
  const now = await spendable(wallet)
  assert.deepEqual(now.map(o => o.outpoint).sort(), beforeLoss.map(o => o.outpoint).sort(), 'every output spendable again')
  assert.equal(sum(now), sum(beforeLoss), 'same balance')
  const paid = await pay(wallet, 5_000, 'after the restore')
  assert.ok(arc.accepted.includes(paid.txid), 'broadcast')
  const tx = Transaction.fromAtomicBEEF(paid.tx)
  assert.equal(await Beef.fromBinary(paid.tx).verify(tracker, true), true)
  assert.equal(await tx.verify('scripts only'), true, '@bsv/sdk verifies the signatures')
  const fee = tx.inputs.reduce((s, i) => s + i.sourceTransaction.outputs[i.sourceOutputIndex].satoshis, 0) -
    tx.outputs.reduce((s, o) => s + o.satoshis, 0)
  assert.equal(sum(await spendable(wallet)), sum(beforeLoss) - 5_000 - fee)
})
