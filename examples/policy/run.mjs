// The policy example's steps (run by run.sh, which starts the two cosigners with a policy file and
// passes the agent's variables): stand-in ARC and WhatsOnChain servers on 127.0.0.1, a BRC-29
// payment taken in, a payment under the limits (verified with @bsv/sdk), one over them refused
// with the rule and the approval that would allow it, `mpc-wallet approve` by the person holding
// the approver key, the same payment going through, and `mpc-wallet audit --verify` on each
// cosigner. Exits non-zero with the reason at the first check that does not hold.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Beef, PrivateKey, SatoshisPerKilobyte, Transaction, Utils } from '../../interop/node_modules/@bsv/sdk/dist/esm/mod.js'
import { brc29Payment, startStandIns } from '../../interop/standins.mjs'

const FUNDING = 200_000
const SMALL = 10_000
const LARGE = 50_000
const FEE_RATE = 100
const ARC_KEY = 'example-arc-key-' + randomBytes(8).toString('hex')

class Failed extends Error {}
const check = (ok, message) => { if (!ok) throw new Failed(message) }
const step = text => console.log(`\n== ${text}`)

const AGENT_VARS = ['MPC_WALLET_ID', 'MPC_STORAGE_PATH', 'MPC_STORAGE_URL', 'MPC_SHARE_SECRET', 'MPC_JWT_SECRET',
  'MPC_PARTY_KEY_FILE', 'MPC_PEER_KEYS', 'MPC_COSIGNER_ENDPOINTS', 'MPC_INSECURE_TEST_PRIMES', 'MPC_MULTIEXP_TABLES']
for (const k of ['MPC_WALLET_BIN', 'MPC_WALLET_ID', 'MPC_COSIGNER_ENDPOINTS', 'APPROVER_KEY', 'COSIGNER_STORES']) {
  if (!process.env[k]) {
    console.error(`policy: FAILED: ${k} is not set: run this through examples/policy/run.sh`)
    process.exit(1)
  }
}
const bin = process.env.MPC_WALLET_BIN
const shorten = text => text.replace(/[0-9a-f]{121,}/g, h => `${h.slice(0, 64)}...(${h.length / 2} bytes)`)

/** Runs `mpc-wallet ARGS` with exactly `env`; resolves to { code, out, err }, printing both. */
function run (env, args) {
  console.log(`$ mpc-wallet ${shorten(args.join(' '))}`)
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    const timer = setTimeout(() => child.kill('SIGTERM'), 600_000)
    child.stdout.on('data', d => { out += d })
    child.stderr.on('data', d => { err += d })
    child.on('error', e => { clearTimeout(timer); reject(new Failed(`cannot run ${bin}: ${e.message}`)) })
    child.on('close', code => {
      clearTimeout(timer)
      if (out) console.log(shorten(out).trimEnd().replace(/^/gm, '    '))
      if (err) console.log(shorten(err).trimEnd().replace(/^/gm, '    '))
      resolve({ code, out, err })
    })
  })
}

async function ok (env, args) {
  const r = await run(env, args)
  check(r.code === 0, `mpc-wallet ${args[0]} exited with ${r.code} (its error is above)`)
  return r.out
}

const line = (out, name) => out.match(new RegExp(`^${name}: (.*)$`, 'm'))?.[1].trim()

async function verified (tracker, beefHex, address, sats) {
  check(await Beef.fromString(beefHex, 'hex').verify(tracker, false), 'Beef.verify: structure or roots do not verify')
  const tx = Transaction.fromAtomicBEEF(Utils.toArray(beefHex, 'hex'))
  check(await tx.verify(tracker, new SatoshisPerKilobyte(FEE_RATE)), 'Transaction.verify: scripts, amounts or fee do not verify')
  console.log(`@bsv/sdk: the payment of ${sats} satoshis to ${address} verifies (roots, scripts, amounts, fee)`)
}

async function main ({ arc, woc, tracker, arcUrl, wocUrl }) {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...Object.fromEntries(AGENT_VARS.filter(k => process.env[k]).map(k => [k, process.env[k]])),
    MPC_ARC_URL: arcUrl,
    MPC_ARC_API_KEY: ARC_KEY,
    MPC_CHAIN_TRACKER_URL: wocUrl,
    MPC_FEE_SAT_PER_KB: String(FEE_RATE)
  }
  const wallet = process.env.MPC_WALLET_ID
  const cosigners = process.env.MPC_COSIGNER_ENDPOINTS.split(',')

  step('the wallet starts (the first run provisions it) and says what each cosigner enforces')
  const shown = await run(env, ['receive'])
  check(shown.code === 0, 'mpc-wallet receive failed')
  const identity = line(shown.out, 'identity key')
  check(/cosigner 1 policy: [0-9a-f]{16} \(per transaction 30000 sats/.test(shown.err), 'the start report does not show cosigner 1\'s policy')
  check(!/enforces no spending policy/.test(shown.err), 'a cosigner reports no policy')

  step(`a sender pays the wallet ${FUNDING} satoshis with @bsv/sdk (BRC-29)`)
  const funding = await brc29Payment(identity, FUNDING, woc)
  const { derivationPrefix, derivationSuffix, senderIdentityKey } = funding.remittance
  await ok(env, ['receive', '--beef', funding.tx.toHexAtomicBEEF(), '--vout', '0',
    '--prefix', derivationPrefix, '--suffix', derivationSuffix, '--sender', senderIdentityKey])

  step(`a payment under the limits: ${SMALL} satoshis`)
  const small = PrivateKey.fromRandom().toAddress()
  const paid = await ok(env, ['pay', '--to', small, '--sats', String(SMALL)])
  await verified(tracker, line(paid, 'beef'), small, SMALL)

  step(`a payment over the limit of one transaction: ${LARGE} satoshis (what a hijacked agent would try)`)
  const large = PrivateKey.fromRandom().toAddress()
  const before = line(await ok(env, ['balance']), 'balance')
  const refused = await run(env, ['pay', '--to', large, '--sats', String(LARGE)])
  check(refused.code !== 0, 'the payment over the limit went through')
  check(/spending policy/.test(refused.err) && /max_sats_per_tx/.test(refused.err), 'the refusal does not name the rule')
  const command = refused.err.match(/mpc-wallet approve --wallet \S+ --to \S+ --sats (\d+)/)
  check(command, 'the refusal does not say how to get an approval')
  check(line(await ok(env, ['balance']), 'balance') === before, 'the refused payment changed the balance')
  console.log('refused with the rule, the limit and the approval that would allow it; nothing was spent')

  step('a person with the approver key approves that one payment (its outflow, with room for the fee)')
  const sats = String(Number(command[1]) + 200)
  const approve = ['approve', '--key', process.env.APPROVER_KEY, '--wallet', wallet, '--to', large, '--sats', sats]
  for (const c of cosigners) approve.push('--cosigner', c)
  const approved = await ok({ PATH: process.env.PATH, HOME: process.env.HOME }, approve)
  check((approved.match(/approval kept/g) ?? []).length === 2, 'not both cosigners kept the approval')

  step(`the approved payment of ${LARGE} satoshis goes through`)
  const paidLarge = await ok(env, ['pay', '--to', large, '--sats', String(LARGE)])
  await verified(tracker, line(paidLarge, 'beef'), large, LARGE)
  check(arc.accepted.includes(line(paidLarge, 'txid')), 'the approved payment was not broadcast')

  step('each cosigner\'s audit log: every decision, hash-chained')
  for (const [i, store] of process.env.COSIGNER_STORES.split(',').entries()) {
    const audit = await ok({ PATH: process.env.PATH, MPC_STORAGE_PATH: store, MPC_PARTY_INDEX: String(i + 1) }, ['audit', '--verify'])
    check(/the chain holds/.test(audit), `cosigner ${i + 1}'s audit chain does not hold`)
  }
}

const standIns = await startStandIns({ arcKey: ARC_KEY })
try {
  await main(standIns)
} catch (e) {
  console.error(`\npolicy: FAILED: ${e instanceof Failed ? e.message : e.stack}`)
  process.exitCode = 1
} finally {
  standIns.close()
}
