// BRC-103 mutual authentication and BRC-41 payments, live against the reference servers:
// `mpc-wallet fetch` (the MPC wallet, embedded default) requests routes of an Express app behind
// @bsv/auth-express-middleware 2.0.5 and @bsv/payment-express-middleware 2.0.2, whose wallet is
// a ProtoWallet with a random key (plus `internalizeAction`, which the payment middleware needs,
// checking the payment with @bsv/sdk). The wallet is funded with a BRC-29 payment and runs `serve`
// alongside, whose HTTPWalletJSON the test reads the books through. Also: answers altered on the
// way are refused; a server's certificatesToRequest gets the wallet's certificate (acquired from
// an @bsv/sdk certifier); and the SDK bytes `wallet-auth`'s unit tests compare against are still
// what @bsv/sdk produces. Uses target/debug/mpc-wallet (MPC_WALLET_BIN).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer, request as httpRequest } from 'node:http'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import express from 'express'
import { createAuthMiddleware } from '@bsv/auth-express-middleware'
import { createPaymentMiddleware } from '@bsv/payment-express-middleware'
import { HTTPWalletJSON, MasterCertificate, PrivateKey, ProtoWallet, Utils, VerifiableCertificate } from '@bsv/sdk'
import { startServe, stop, testVars } from './serve.mjs'
import { ServerWallet, brc29Payment, startStandIns } from './standins.mjs'
import { fixtures } from './auth-fixtures.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = process.env.MPC_WALLET_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'mpc-wallet')
const dir = mkdtempSync(join(tmpdir(), 'mpc-auth-'))
const TOKEN = randomBytes(32).toString('hex')
const ARC_KEY = 'arc-key-' + randomBytes(8).toString('hex')
const PRICE = 100

let standIns, serve, wallet, identity, app, appUrl, serverWallet, serverIdentity
const proxies = []

/** The wallet's configuration, for `serve` and for every `fetch`. */
const walletEnv = () => ({
  MPC_WALLET_ID: 'auth',
  MPC_SHARE_SECRET: 'auth interop secret',
  MPC_STORAGE_PATH: join(dir, 'agent.db'),
  MPC_ARC_URL: standIns.arcUrl,
  MPC_ARC_API_KEY: ARC_KEY,
  MPC_CHAIN_TRACKER_URL: standIns.wocUrl,
  MPC_FEE_SAT_PER_KB: '50'
})

/** Runs `mpc-wallet fetch ARGS` (next to the running `serve`); resolves to { code, stdout, stderr }. */
function fetchCli (args) {
  return run(bin, ['fetch', ...args], { PATH: process.env.PATH, ...testVars(), ...walletEnv() })
}

function run (command, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    const out = []
    let stderr = ''
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${command} ${args.join(' ')} took too long:\n${stderr}`)) }, 300_000)
    child.stdout.on('data', d => out.push(d))
    child.stderr.on('data', d => { stderr += d })
    child.on('error', reject)
    child.on('exit', code => { clearTimeout(timer); resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr }) })
  })
}


/** The Express app: auth middleware first, then routes; `seen` records what the routes got. */
function startApp (wallet, options = {}) {
  const seen = []
  const a = express()
  a.use(express.json())
  a.use(express.text())
  a.use(createAuthMiddleware({ wallet, ...options }))
  a.get('/hello', (req, res) => {
    seen.push({ route: 'hello', identityKey: req.auth.identityKey, query: { ...req.query } })
    res.set('x-bsv-greeting', 'hi').json({ hello: req.auth.identityKey, query: req.query })
  })
  a.post('/echo', (req, res) => {
    seen.push({ route: 'echo', identityKey: req.auth.identityKey, body: req.body })
    res.json({ identityKey: req.auth.identityKey, got: req.body })
  })
  a.get('/nothing', (req, res) => { res.status(204).end() })
  a.get('/paid', createPaymentMiddleware({ wallet, calculateRequestPrice: () => PRICE }), (req, res) => {
    seen.push({ route: 'paid', identityKey: req.auth.identityKey, payment: req.payment })
    res.json({ paid: req.payment.satoshisPaid })
  })
  return new Promise(resolve => {
    const server = a.listen(0, '127.0.0.1', () => resolve({ server, seen, url: `http://127.0.0.1:${server.address().port}` }))
  })
}

/** A proxy in front of `target` that passes the handshake and changes every other answer with `alter`. */
function startProxy (target, alter) {
  const server = createServer((req, res) => {
    const chunks = []
    req.on('data', c => chunks.push(c))
    req.on('end', () => {
      const { hostname, port } = new URL(target)
      const upstream = httpRequest({ hostname, port, method: req.method, path: req.url, headers: req.headers }, up => {
        const body = []
        up.on('data', c => body.push(c))
        up.on('end', () => {
          let bytes = Buffer.concat(body)
          const headers = { ...up.headers }
          if (req.url !== '/.well-known/auth') ({ bytes } = alter({ bytes, headers }))
          delete headers['content-length']
          delete headers['transfer-encoding']
          res.writeHead(up.statusCode, headers)
          res.end(bytes)
        })
      })
      upstream.end(Buffer.concat(chunks))
    })
  })
  proxies.push(server)
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`)))
}

before(async () => {
  standIns = await startStandIns({ arcKey: ARC_KEY })
  serve = await startServe(bin, { ...walletEnv(), MPC_ALLOWED_ORIGINS: 'http://localhost', MPC_API_TOKEN: TOKEN })
  wallet = new HTTPWalletJSON('localhost', serve.url, (u, init = {}) =>
    fetch(u, { ...init, headers: { ...init.headers, Authorization: `Bearer ${TOKEN}` } }))
  identity = (await wallet.getPublicKey({ identityKey: true })).publicKey
  const funding = await brc29Payment(identity, 50_000, standIns.woc)
  const r = await wallet.internalizeAction({
    tx: funding.tx.toAtomicBEEF(),
    outputs: [{ outputIndex: 0, protocol: 'wallet payment', paymentRemittance: funding.remittance }],
    description: 'funding for the auth test'
  })
  assert.equal(r.accepted, true)
  serverWallet = new ServerWallet(PrivateKey.fromRandom())
  serverIdentity = (await serverWallet.getPublicKey({ identityKey: true })).publicKey
  app = await startApp(serverWallet)
  appUrl = app.url
})

after(async () => {
  if (serve) await stop(serve.child)
  app?.server.close()
  for (const p of proxies) p.close()
  standIns?.close()
  rmSync(dir, { recursive: true, force: true })
})

test('the SDK bytes wallet-auth is tested against are what @bsv/sdk 2.1.0 produces', async () => {
  const checkedIn = JSON.parse(readFileSync(join(root, 'auth', 'tests', 'fixtures', 'sdk.json'), 'utf8'))
  assert.deepEqual(checkedIn, JSON.parse(JSON.stringify(await fixtures())), 'regenerate: node interop/auth-fixtures.mjs > auth/tests/fixtures/sdk.json')
})

test('GET: the middleware sees the wallet\'s identity key; the signed answer is printed', async () => {
  const r = await fetchCli([`${appUrl}/hello?city=Paris&n=1`])
  assert.equal(r.code, 0, r.stderr)
  const [status, ...rest] = r.stdout.split('\n')
  assert.equal(status, '200 OK')
  assert.deepEqual(JSON.parse(rest.join('\n')), { hello: identity, query: { city: 'Paris', n: '1' } })
  assert.match(r.stderr, new RegExp(`server identity: ${serverIdentity}`))
  assert.deepEqual(app.seen.at(-1), { route: 'hello', identityKey: identity, query: { city: 'Paris', n: '1' } })
})

test('POST with a JSON body (not in JSON.stringify\'s spelling) is verified by the middleware', async () => {
  const r = await fetchCli([`${appUrl}/echo`, '--body', '{ "msg": "héllo",  "n": 1.50, "list": [1, 2] }', '-H', 'X-BSV-Topic: tests'])
  assert.equal(r.code, 0, r.stderr)
  const body = JSON.parse(r.stdout.split('\n').slice(1).join('\n'))
  assert.deepEqual(body, { identityKey: identity, got: { msg: 'héllo', n: 1.5, list: [1, 2] } })
  assert.equal(app.seen.at(-1).identityKey, identity)
})

test('an empty answer (204, which the middleware signs with body length -1) is accepted', async () => {
  const r = await fetchCli([`${appUrl}/nothing`])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout, '204 No Content\n')
})

test('a price above --max-pay is refused before anything is paid', async () => {
  const before = await wallet.listActions({ labels: [], limit: 100 })
  const r = await fetchCli([`${appUrl}/paid`, '--max-pay', String(PRICE - 1)])
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, new RegExp(`asks ${PRICE} satoshis`))
  assert.match(r.stderr, /nothing was paid/)
  assert.equal(r.stdout, '')
  assert.equal(serverWallet.payments.length, 0)
  assert.equal((await wallet.listActions({ labels: [], limit: 100 })).totalActions, before.totalActions)
})

test('a 402 is paid (BRC-29 to the server\'s key, checked by @bsv/sdk) and the request goes through', async () => {
  const balance = async () => (await wallet.listOutputs({ basket: 'default', limit: 1000 })).outputs.reduce((s, o) => s + o.satoshis, 0)
  const before = await balance()
  const r = await fetchCli([`${appUrl}/paid`])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout, `200 OK\n${JSON.stringify({ paid: PRICE })}`)
  const m = r.stderr.match(new RegExp(`paid ${PRICE} satoshis to ${serverIdentity} in ([0-9a-f]{64})`))
  assert.ok(m, r.stderr)
  const txid = m[1]
  // The server's wallet got it: output 0 pays its BRC-29 key for the prefix it gave and our suffix.
  assert.equal(serverWallet.payments.length, 1)
  assert.deepEqual(
    { ...serverWallet.payments[0], derivationPrefix: undefined, derivationSuffix: undefined },
    { txid, satoshis: PRICE, paysUs: true, scriptsVerify: true, senderIdentityKey: identity, derivationPrefix: undefined, derivationSuffix: undefined })
  assert.deepEqual(app.seen.at(-1).payment.satoshisPaid, PRICE)
  assert.ok(standIns.arc.accepted.includes(txid), 'the payment was broadcast')
  // The wallet's books show it.
  const actions = await wallet.listActions({ labels: [], limit: 100 })
  const paid = actions.actions.find(a => a.txid === txid)
  assert.ok(paid, 'listActions shows the payment')
  assert.equal(paid.isOutgoing, true)
  assert.equal(paid.description, `Payment for request to ${appUrl}`)
  assert.ok(paid.satoshis <= -PRICE, `net ${paid.satoshis}`)
  assert.ok(await balance() <= before - PRICE)
})

test('an answer altered on the way is refused, and nothing of it is printed', async () => {
  const flipped = await startProxy(appUrl, ({ bytes, headers }) => {
    const b = Buffer.from(bytes)
    if (b.length > 0) b[b.length - 2] ^= 1
    return { bytes: b, headers }
  })
  const r = await fetchCli([`${flipped}/hello`])
  assert.notEqual(r.code, 0)
  assert.equal(r.stdout, '')
  assert.match(r.stderr, /signature does not verify/)
  const stripped = await startProxy(appUrl, ({ bytes, headers }) => {
    delete headers['x-bsv-auth-signature']
    return { bytes, headers }
  })
  const s = await fetchCli([`${stripped}/hello`])
  assert.notEqual(s.code, 0)
  assert.equal(s.stdout, '')
  assert.match(s.stderr, /without BRC-103 authentication/)
  const forged = await startProxy(appUrl, ({ bytes, headers }) => {
    headers['x-bsv-auth-identity-key'] = PrivateKey.fromRandom().toPublicKey().toString()
    return { bytes, headers }
  })
  const f = await fetchCli([`${forged}/hello`])
  assert.notEqual(f.code, 0)
  assert.match(f.stderr, /not as the server of this session/)
})

test('a server that asks for certificates gets the wallet\'s, only the fields it names, and says so', async t => {
  const certifier = new ProtoWallet(PrivateKey.fromRandom())
  const certifierIdentity = (await certifier.getPublicKey({ identityKey: true })).publicKey
  const verifier = new ServerWallet(PrivateKey.fromRandom())
  const verifierIdentity = (await verifier.getPublicKey({ identityKey: true })).publicKey
  const type = Utils.toBase64(Array.from(randomBytes(32)))
  const master = await MasterCertificate.issueCertificateForSubject(certifier, identity, { name: 'Alice', role: 'agent' }, type, async () => '00'.repeat(32) + '.0')
  await wallet.acquireCertificate({
    type, certifier: certifierIdentity, acquisitionProtocol: 'direct', fields: master.fields, serialNumber: master.serialNumber,
    revocationOutpoint: master.revocationOutpoint, signature: master.signature, keyringRevealer: 'certifier', keyringForSubject: master.masterKeyring
  })
  const received = []
  const guarded = await startApp(verifier, {
    certificatesToRequest: { certifiers: [certifierIdentity], types: { [type]: ['name'] } },
    onCertificatesReceived: (sender, certs) => received.push({ sender, certs })
  })
  t.after(() => guarded.server.close())
  const f = await fetchCli([`${guarded.url}/hello`])
  assert.equal(f.code, 0, f.stderr)
  assert.match(f.stdout, /^200 OK\n/)
  assert.match(f.stderr, new RegExp(`revealed fields \\[name\\] of certificate ${type.replace(/[+/=]/g, c => '\\' + c)} from certifier ${certifierIdentity} to ${verifierIdentity}`))
  assert.equal(received.length, 1)
  assert.equal(received[0].sender, identity)
  const [cert] = received[0].certs
  const opened = await new VerifiableCertificate(cert.type, cert.serialNumber, cert.subject, cert.certifier, cert.revocationOutpoint, cert.fields, cert.keyring, cert.signature).decryptFields(verifier)
  assert.deepEqual(opened, { name: 'Alice' })
  // With --no-certificates the request is refused at once, naming what the server wanted.
  const other = await startApp(new ServerWallet(PrivateKey.fromRandom()), { certificatesToRequest: { certifiers: [certifierIdentity], types: { [type]: ['name'] } } })
  t.after(() => other.server.close())
  const none = await fetchCli(['--no-certificates', `${other.url}/hello`])
  assert.notEqual(none.code, 0)
  assert.match(none.stderr, /asks for certificates/)
  assert.match(none.stderr, new RegExp(certifierIdentity))
})
