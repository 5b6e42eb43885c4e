// The pay-receive example's steps (run by run.sh, which starts the cosigners and passes the
// agent's variables): stand-in ARC and WhatsOnChain servers on 127.0.0.1, a sender's BRC-29
// payment made with @bsv/sdk taken in with `mpc-wallet receive`, `balance`, a payment out with
// `mpc-wallet pay` whose Atomic BEEF @bsv/sdk verifies (roots, scripts, amounts, fee), `history`.
// Exits non-zero with the reason at the first check that does not hold.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Beef, P2PKH, PrivateKey, SatoshisPerKilobyte, Transaction, Utils } from '../../interop/node_modules/@bsv/sdk/dist/esm/mod.js'
import { brc29Payment, startStandIns } from '../../interop/standins.mjs'

const FUNDING = 100_000
const PAYMENT = 25_000
const FEE_RATE = 100
const ARC_KEY = 'example-arc-key-' + randomBytes(8).toString('hex')

class Failed extends Error {}
const check = (ok, message) => { if (!ok) throw new Failed(message) }
const step = text => console.log(`\n== ${text}`)

// The agent's variables, as run.sh set them; nothing else of this process's environment.
const AGENT_VARS = ['MPC_WALLET_ID', 'MPC_STORAGE_PATH', 'MPC_STORAGE_URL', 'MPC_SHARE_SECRET', 'MPC_JWT_SECRET',
  'MPC_PARTY_KEY_FILE', 'MPC_PEER_KEYS', 'MPC_COSIGNER_ENDPOINTS', 'MPC_INSECURE_TEST_PRIMES', 'MPC_MULTIEXP_TABLES']
for (const k of ['MPC_WALLET_BIN', 'MPC_WALLET_ID', 'MPC_SHARE_SECRET', 'MPC_COSIGNER_ENDPOINTS']) {
  if (!process.env[k]) {
    console.error(`pay-receive: FAILED: ${k} is not set: run this through examples/pay-receive/run.sh`)
    process.exit(1)
  }
}
const bin = process.env.MPC_WALLET_BIN

/** Long hex (a BEEF) shortened for the reader. */
const shorten = text => text.replace(/[0-9a-f]{121,}/g, h => `${h.slice(0, 64)}...(${h.length / 2} bytes)`)

/** The standard error of the last `wallet` run: the wallet's start report. */
let report = ''

/**
 * Runs `mpc-wallet ARGS` with exactly `env`, its progress and start report (stderr, kept in
 * `report`) shown as they come; resolves to its standard output, printed indented once it exits 0.
 */
function wallet (env, args) {
  console.log(`$ mpc-wallet ${shorten(args.join(' '))}`)
  report = ''
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stderr.on('data', d => { report += d; process.stderr.write(d) })
    let out = ''
    const timer = setTimeout(() => child.kill('SIGTERM'), 600_000)
    child.stdout.on('data', d => { out += d })
    child.on('error', e => { clearTimeout(timer); reject(new Failed(`cannot run ${bin}: ${e.message}`)) })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (out) console.log(shorten(out).trimEnd().replace(/^/gm, '    '))
      if (code === 0) resolve(out)
      else reject(new Failed(`mpc-wallet ${args[0]} exited with ${code ?? signal} (its error is above)`))
    })
  })
}

/** The value of the `NAME: value` line of `out`. */
function line (out, name, command) {
  const m = out.match(new RegExp(`^${name}: (.*)$`, 'm'))
  check(m, `mpc-wallet ${command} printed no "${name}:" line`)
  return m[1].trim()
}

async function balance (env) {
  const m = line(await wallet(env, ['balance']), 'balance', 'balance').match(/^(\d+) satoshis in (\d+) spendable output/)
  check(m, 'mpc-wallet balance: the balance line does not read "N satoshis in K spendable output(s)"')
  return { sats: Number(m[1]), outputs: Number(m[2]) }
}

async function main (standIns) {
  const { arc, woc, tracker } = standIns
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...Object.fromEntries(AGENT_VARS.filter(k => process.env[k]).map(k => [k, process.env[k]])),
    MPC_ARC_URL: standIns.arcUrl,
    MPC_ARC_API_KEY: ARC_KEY,
    MPC_CHAIN_TRACKER_URL: standIns.wocUrl,
    MPC_FEE_SAT_PER_KB: String(FEE_RATE)
  }
  console.log(`stand-in ARC: ${standIns.arcUrl}`)
  console.log(`stand-in WhatsOnChain (chain tracker): ${standIns.wocUrl}`)

  step('what a sender needs (the first run provisions the wallet: DKG with the cosigners, one to two minutes)')
  const shown = await wallet(env, ['receive'])
  const identity = line(shown, 'identity key', 'receive')
  check(/^0[23][0-9a-f]{64}$/.test(identity), `the identity key ${identity} is not a compressed public key`)
  check(/^provisioned: created$/m.test(report), 'the first run did not create the wallet')

  step('the balance of a new wallet')
  const empty = await balance(env)
  check(empty.sats === 0 && empty.outputs === 0, `a new wallet has ${empty.sats} satoshis in ${empty.outputs} output(s)`)

  step(`a sender pays the wallet ${FUNDING} satoshis with @bsv/sdk (ProtoWallet, BRC-29)`)
  const funding = await brc29Payment(identity, FUNDING, woc)
  const fundingTxid = funding.tx.id('hex')
  const { derivationPrefix, derivationSuffix, senderIdentityKey } = funding.remittance
  console.log(`funding transaction ${fundingTxid}: output 0 pays ${FUNDING} satoshis to the BRC-29 key`)
  console.log(`its parent is in block ${funding.tx.inputs[0].sourceTransaction.merklePath.blockHeight}, whose root the chain tracker knows`)

  step('the wallet takes the payment in')
  const received = await wallet(env, ['receive', '--beef', funding.tx.toHexAtomicBEEF(), '--vout', '0',
    '--prefix', derivationPrefix, '--suffix', derivationSuffix, '--sender', senderIdentityKey])
  check(/^received: /m.test(received), 'mpc-wallet receive did not say it received the payment')
  check(arc.accepted.includes(fundingTxid), 'the funding transaction was not broadcast to ARC')
  console.log(`stand-in ARC accepted the funding transaction ${fundingTxid}`)
  const funded = await balance(env)
  check(funded.sats === FUNDING && funded.outputs === 1, `after the payment the balance is ${funded.sats} satoshis in ${funded.outputs} output(s), expected ${FUNDING} in 1`)

  step(`the wallet pays a third party ${PAYMENT} satoshis`)
  const address = PrivateKey.fromRandom().toAddress()
  const paid = await wallet(env, ['pay', '--to', address, '--sats', String(PAYMENT)])
  const txid = line(paid, 'txid', 'pay')
  const beefHex = line(paid, 'beef', 'pay')

  step('@bsv/sdk verifies the payment\'s Atomic BEEF')
  check(await Beef.fromString(beefHex, 'hex').verify(tracker, false), 'Beef.verify: the BEEF\'s structure or merkle roots do not verify')
  console.log('Beef.verify: structure and merkle roots hold')
  const tx = Transaction.fromAtomicBEEF(Utils.toArray(beefHex, 'hex'))
  check(tx.id('hex') === txid, `the BEEF's transaction is ${tx.id('hex')}, pay printed ${txid}`)
  check(await tx.verify(tracker, new SatoshisPerKilobyte(FEE_RATE)), 'Transaction.verify: scripts, amounts or fee do not verify')
  console.log(`Transaction.verify: scripts, amounts and the fee at ${FEE_RATE} sat/kB hold`)
  const script = new P2PKH().lock(address).toHex()
  const toThirdParty = tx.outputs.filter(o => o.lockingScript.toHex() === script)
  check(toThirdParty.length === 1 && toThirdParty[0].satoshis === PAYMENT,
    `the third party (${address}) got ${toThirdParty.map(o => o.satoshis).join(' + ') || 'nothing'}, expected one output of ${PAYMENT}`)
  console.log(`the third party ${address} got exactly ${PAYMENT} satoshis`)
  const spends = tx.inputs.map(i => `${i.sourceTXID ?? i.sourceTransaction.id('hex')}.${i.sourceOutputIndex}`)
  check(spends.includes(`${fundingTxid}.0`), `the payment spends ${spends.join(', ')}, not the funding output ${fundingTxid}.0`)
  const inSats = tx.inputs.reduce((sum, i) => sum + i.sourceTransaction.outputs[i.sourceOutputIndex].satoshis, 0)
  const fee = inSats - tx.outputs.reduce((sum, o) => sum + o.satoshis, 0)
  const minFee = await new SatoshisPerKilobyte(FEE_RATE).computeFee(tx)
  check(fee >= minFee, `the fee ${fee} is below ${minFee}, what ${FEE_RATE} sat/kB asks of this transaction`)
  console.log(`fee: ${fee} satoshis for ${tx.toBinary().length} bytes (${FEE_RATE} sat/kB asks ${minFee})`)
  check(arc.accepted.includes(txid), 'the payment was not broadcast to ARC')
  console.log(`stand-in ARC accepted the payment ${txid}`)

  step('the balance went down by the payment and the fee')
  const after = await balance(env)
  const expected = funded.sats - PAYMENT - fee
  check(after.sats === expected, `the balance is ${after.sats}, expected ${funded.sats} - ${PAYMENT} - ${fee} = ${expected}`)
  console.log(`${funded.sats} - ${PAYMENT} - ${fee} = ${after.sats}`)

  step('the wallet\'s history')
  const history = await wallet(env, ['history'])
  for (const [what, id] of [['funding transaction', fundingTxid], ['payment', txid]]) {
    check(history.includes(id), `mpc-wallet history does not list the ${what} ${id}`)
  }
}

const standIns = await startStandIns({ arcKey: ARC_KEY })
try {
  await main(standIns)
} catch (e) {
  console.error(`\npay-receive: FAILED: ${e instanceof Failed ? e.message : e.stack}`)
  process.exitCode = 1
} finally {
  standIns.close()
}
