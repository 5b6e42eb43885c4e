// The wallet's MCP server (`mpc-wallet mcp`), live against the official MCP client
// (@modelcontextprotocol/sdk) over stdio and over streamable HTTP, on the embedded default with a
// cosigner policy (MPC_POLICY_FILE) and the stand-in ARC and WhatsOnChain of actions.test.mjs:
// tools and their schemas; a BRC-29 payment built with @bsv/sdk taken in; get_balance; pay
// (verified with @bsv/sdk); one idempotency key paying once; a payment over the policy refused
// with its rule and the approve command; fetch of a paid API behind
// @bsv/payment-express-middleware; hostile inputs each a clean tool error with the server up.
// Over HTTP also: the front's door refuses a missing token, a foreign Origin and Host.
// Uses MPC_WALLET_BIN (default target/debug/mpc-wallet).
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import express from 'express'
import { createAuthMiddleware } from '@bsv/auth-express-middleware'
import { createPaymentMiddleware } from '@bsv/payment-express-middleware'
import { HTTPWalletJSON, MasterCertificate, P2PKH, PrivateKey, ProtoWallet, Transaction, Utils, VerifiableCertificate } from '@bsv/sdk'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startServe, stop, testVars } from './serve.mjs'
import { ServerWallet, brc29Payment, minedParent, nextHeight, startStandIns } from './standins.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = process.env.MPC_WALLET_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'mpc-wallet')
const ARC_KEY = 'arc-key-' + randomBytes(8).toString('hex')
const TOKEN = randomBytes(32).toString('hex')
const PRICE = 100
const TOOLS = ['wallet_status', 'get_balance', 'receive_info', 'internalize_payment', 'pay', 'list_history', 'list_outputs',
  'fetch', 'sign_message', 'verify_message', 'encrypt', 'decrypt', 'list_certificates', 'prove_certificate']

let standIns, app


before(async () => {
  standIns = await startStandIns({ arcKey: ARC_KEY })
  const wallet = new ServerWallet(PrivateKey.fromRandom())
  const seen = []
  const a = express()
  a.use(express.json())
  a.use(createAuthMiddleware({ wallet }))
  a.get('/paid', createPaymentMiddleware({ wallet, calculateRequestPrice: () => PRICE }), (req, res) => {
    seen.push({ identityKey: req.auth.identityKey, payment: req.payment })
    res.json({ paid: req.payment.satoshisPaid })
  })
  const server = await new Promise(resolve => { const s = a.listen(0, '127.0.0.1', () => resolve(s)) })
  app = { server, seen, wallet, url: `http://127.0.0.1:${server.address().port}` }
})

after(() => {
  standIns?.close()
  app?.server.close()
})

/**
 * The wallet's environment: its own data directory, the stand-ins, a policy of 20000 sats per
 * transaction with an approver key (so a refusal names the approval that would lift it).
 */
function walletEnv (dir, extra = {}) {
  const policyFile = join(dir, 'policy.toml')
  const approver = PrivateKey.fromRandom().toPublicKey().toString()
  writeFileSync(policyFile, `max_sats_per_tx = 20000\nmax_sats_per_window = 200000\napprover_keys = ["${approver}"]\n`)
  return {
    PATH: process.env.PATH,
    ...testVars(),
    MPC_WALLET_ID: 'mcp',
    MPC_SHARE_SECRET: 'mcp interop secret',
    MPC_STORAGE_PATH: join(dir, 'agent.db'),
    MPC_ARC_URL: standIns.arcUrl,
    MPC_ARC_API_KEY: ARC_KEY,
    MPC_CHAIN_TRACKER_URL: standIns.wocUrl,
    MPC_FEE_SAT_PER_KB: '50',
    MPC_POLICY_FILE: policyFile,
    ...extra
  }
}

/** Over stdio: the client starts the wallet as an agent host does. */
async function connectStdio (dir) {
  const transport = new StdioClientTransport({ command: bin, args: ['mcp'], env: walletEnv(dir), stderr: 'pipe' })
  const log = { text: '' }
  transport.stderr.on('data', d => { log.text += d })
  const client = new Client({ name: 'mcp-interop', version: '1.0.0' })
  await client.connect(transport)
  return { client, log, alive: () => transport._process?.exitCode === null, close: () => client.close() }
}

/** Over streamable HTTP: `mpc-wallet mcp --listen` with a token. */
async function connectHttp (dir) {
  const child = spawn(bin, ['mcp', '--listen', '127.0.0.1:0'], { env: walletEnv(dir, { MPC_API_TOKEN: TOKEN }), stdio: ['ignore', 'pipe', 'pipe'] })
  const log = { text: '', out: '' }
  child.stdout.on('data', d => { log.out += d })
  const url = await new Promise((resolve, reject) => {
    child.stderr.on('data', d => {
      log.text += d
      const m = log.text.match(/^listening: (http:\/\/\S+)$/m)
      if (m) resolve(m[1])
    })
    child.on('exit', code => reject(new Error(`mcp exited with ${code}:\n${log.text}`)))
  })
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } } })
  const client = new Client({ name: 'mcp-interop', version: '1.0.0' })
  await client.connect(transport)
  return {
    client,
    log,
    url,
    alive: () => child.exitCode === null,
    close: async () => {
      await client.close()
      await new Promise(resolve => { child.removeAllListeners('exit'); child.on('exit', resolve); child.kill('SIGTERM') })
    }
  }
}

/** A raw HTTP POST (or `method`) with chosen headers (Host included), resolving to { status, body, headers }. */
function post (url, headers, body, method = 'POST') {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname: u.hostname, port: u.port, path: u.pathname, method, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } }, res => {
      let b = ''
      res.on('data', d => { b += d })
      res.on('end', () => resolve({ status: res.statusCode, body: b, headers: res.headers }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

const thirdParty = () => new P2PKH().lock(PrivateKey.fromRandom().toAddress()).toHex()

test('--tools offers only the tools named, --fetch-hosts bounds fetch; a wrong name stops the start', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mpc-mcp-tools-'))
  try {
    const offered = ['wallet_status', 'get_balance', 'fetch']
    const transport = new StdioClientTransport({ command: bin, args: ['mcp', '--tools', 'fetch,wallet_status, get_balance', '--fetch-hosts', 'api.example.com,*.example.org'], env: walletEnv(dir), stderr: 'pipe' })
    const client = new Client({ name: 'mcp-interop', version: '1.0.0' })
    await client.connect(transport)
    try {
      assert.deepEqual((await client.listTools()).tools.map(t => t.name), offered)
      await assert.rejects(client.callTool({ name: 'pay', arguments: { to: thirdParty(), satoshis: 1000, description: 'not offered', idempotency_key: 'x' } }),
        /no tool named "pay"/)
      const r = await client.callTool({ name: 'fetch', arguments: { url: `${app.url}/paid`, max_sats: 500 } })
      assert.equal(r.isError, true)
      assert.match(r.content[0].text, /may fetch only from api\.example\.com, \*\.example\.org; 127\.0\.0\.1 is not among them/)
      assert.equal(app.wallet.payments.length, 0, 'nothing reached the paid API')
    } finally {
      await client.close()
    }
    const wrong = spawnSync(bin, ['mcp', '--tools', 'pay,send_all'], { env: walletEnv(dir), input: '', encoding: 'utf8', timeout: 60_000 })
    assert.notEqual(wrong.status, 0)
    assert.match(wrong.stderr, /--tools: "send_all" is not a tool; the tools are wallet_status, get_balance/)
    assert.equal(wrong.stdout, '')
    const badHost = spawnSync(bin, ['mcp', '--fetch-hosts', 'file:///etc'], { env: walletEnv(dir), input: '', encoding: 'utf8', timeout: 60_000 })
    assert.notEqual(badHost.status, 0)
    assert.match(badHost.stderr, /--fetch-hosts: "file:\/\/\/etc" is not a host/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})


for (const [transportName, connect] of [['stdio', connectStdio], ['streamable HTTP', connectHttp]]) {
  describe(`mcp over ${transportName}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpc-mcp-'))
    let w, identity, firstPay
    const progress = []
    /** Calls a tool with a progress token and a timeout that the progress resets. */
    const call = (name, args = {}) => w.client.callTool({ name, arguments: args }, undefined, {
      timeout: 120_000, resetTimeoutOnProgress: true, onprogress: p => progress.push({ name, ...p })
    })
    const ok = async (name, args) => {
      const r = await call(name, args)
      assert.ok(!r.isError, `${name}: ${JSON.stringify(r.content)}`)
      return r.structuredContent
    }
    const refused = async (name, args, pattern) => {
      const r = await call(name, args)
      assert.equal(r.isError, true, `${name} should be refused: ${JSON.stringify(r.structuredContent)}`)
      assert.match(r.content[0].text, pattern)
      return r.content[0].text
    }

    /** The operator's log (the server's stderr, which may arrive after the answer) gets `line`. */
    const logged = async line => {
      const has = () => typeof line === 'string' ? w.log.text.includes(line) : line.test(w.log.text)
      for (let i = 0; i < 100 && !has(); i++) await new Promise(resolve => setTimeout(resolve, 100))
      assert.ok(has(), `the operator log says ${line}:\n${w.log.text.slice(-2000)}`)
    }

    before(async () => { w = await connect(dir) })
    after(async () => {
      await w?.close()
      rmSync(dir, { recursive: true, force: true })
    })

    test('initialize negotiates a protocol version and lists every tool with its schemas', async () => {
      assert.equal(w.client.getServerVersion().name, 'mpc-wallet')
      assert.ok(w.client.getServerCapabilities().tools)
      const { tools } = await w.client.listTools()
      assert.deepEqual(tools.map(t => t.name), TOOLS)
      for (const t of tools) {
        assert.equal(t.inputSchema.type, 'object', t.name)
        assert.ok(t.outputSchema, t.name)
        assert.ok(t.description.length > 40, t.name)
      }
      const pay = tools.find(t => t.name === 'pay')
      assert.deepEqual([...pay.inputSchema.required].sort(), ['description', 'idempotency_key', 'satoshis', 'to'])
      assert.equal(pay.inputSchema.properties.satoshis.type, 'integer')
      assert.doesNotMatch(JSON.stringify(tools), /"format":"u?int/, 'no Rust-only number formats in the schemas')
    })

    test('a malformed call is refused at once, without waiting for the wallet to start', async () => {
      await refused('pay', { to: thirdParty(), satoshis: 0, description: 'nothing at all', idempotency_key: 'early' }, /satoshis must be/)
      await refused('receive_info', { date: '2026-02-30' }, /YYYY-MM-DD/)
      assert.deepEqual(progress.filter(p => p.name !== 'wallet_status'), [], 'no call waited for the start')
    })

    test('wallet_status waits for the first start (DKG), with progress, and reports the cosigners and policy', async () => {
      const s = await ok('wallet_status')
      identity = s.identity_key
      assert.match(identity, /^0[23][0-9a-f]{64}$/)
      assert.equal(s.can_sign, true)
      assert.equal(s.cosigners.length, 2)
      assert.equal(s.cosigners[0].policy.max_sats_per_tx, 20000)
      assert.ok(progress.some(p => p.name === 'wallet_status' && /starting/.test(p.message)), 'progress while the wallet starts')
      await logged(/provisioned: created/)
    })

    test('a BRC-29 payment built with @bsv/sdk is taken in, and get_balance shows it', async () => {
      const info = await ok('receive_info')
      assert.equal(info.identity_key, identity)
      assert.match(info.address, /^1/)
      const p = await brc29Payment(identity, 100_000, standIns.woc)
      const r = await ok('internalize_payment', {
        beef: Utils.toHex(p.tx.toAtomicBEEF()),
        output_index: 0,
        derivation_prefix: p.remittance.derivationPrefix,
        derivation_suffix: p.remittance.derivationSuffix,
        sender_identity_key: p.remittance.senderIdentityKey
      })
      assert.deepEqual(r, { accepted: true, txid: p.tx.id('hex') })
      // The day's address, paid by a sender without BRC-29 and taken in with address_remittance;
      // the date alone gives the same address and remittance back.
      assert.deepEqual(await ok('receive_info', { date: info.address_date }), info)
      const senderKey = PrivateKey.fromRandom()
      const parent = minedParent(senderKey, 30_000, nextHeight(), standIns.woc)
      const plain = new Transaction()
      plain.addInput({ sourceTransaction: parent, sourceOutputIndex: 0, unlockingScriptTemplate: new P2PKH().unlock(senderKey) })
      plain.addOutput({ lockingScript: new P2PKH().lock(info.address), satoshis: 20_000 })
      await plain.sign()
      const ra = info.address_remittance
      assert.equal(ra.sender_identity_key, identity)
      const r2 = await ok('internalize_payment', {
        beef: Utils.toHex(plain.toAtomicBEEF()),
        output_index: 0,
        derivation_prefix: ra.derivation_prefix,
        derivation_suffix: ra.derivation_suffix,
        sender_identity_key: ra.sender_identity_key,
        description: 'paid to the address'
      })
      assert.deepEqual(r2, { accepted: true, txid: plain.id('hex') })
      const b = await ok('get_balance')
      assert.equal(b.satoshis, 120_000)
      assert.equal(b.spendable_outputs, 2)
      assert.equal(b.policy.length, 2)
      assert.equal(b.policy[0].window_sats_left, 200000)
      const outs = await ok('list_outputs', {})
      assert.equal(outs.total, 2)
      assert.deepEqual(outs.outputs.map(o => o.outpoint).sort(), [`${p.tx.id('hex')}.0`, `${plain.id('hex')}.0`].sort())
    })

    test('pay pays (verified with @bsv/sdk), with progress; the same idempotency key twice pays once', async () => {
      const to = thirdParty()
      const key = 'invoice-' + randomBytes(4).toString('hex')
      const before = standIns.arc.accepted.length
      const args = { to, satoshis: 5_000, description: 'pay a third party', idempotency_key: key }
      const first = await ok('pay', args)
      firstPay = { args, txid: first.txid }
      assert.match(first.txid, /^[0-9a-f]{64}$/)
      assert.equal(first.already_paid, false)
      assert.equal(standIns.arc.accepted.length, before + 1)
      const raw = standIns.arc.raw.get(first.txid)
      const tx = raw.startsWith('0100beef') ? Transaction.fromHexBEEF(raw) : Transaction.fromHexEF(raw)
      assert.equal(await tx.verify('scripts only'), true)
      assert.ok(tx.outputs.some(o => o.lockingScript.toHex() === to && o.satoshis === 5_000))
      assert.ok(progress.some(p => p.name === 'pay' && /signing/.test(p.message)), 'progress while signing')
      await logged(`mcp: pay 5000 satoshis to script ${to} ("pay a third party"): ok, 5000 satoshis in ${first.txid}`)
      const again = await ok('pay', args)
      assert.deepEqual({ ...again, already_paid: true }, { ...first, already_paid: true, status: again.status })
      assert.equal(again.already_paid, true)
      assert.equal(standIns.arc.accepted.length, before + 1, 'paid once')
      // The key reused for another payment is refused, not paid.
      await refused('pay', { ...args, satoshis: 6_000 }, /already used for a different payment/)
      const h = await ok('list_history', { limit: 10 })
      assert.equal(h.total, 3)
      assert.equal(h.transactions[0].txid, first.txid, 'newest first')
      assert.ok(h.transactions[0].outgoing && h.transactions[0].satoshis < -5_000)
      assert.deepEqual((await ok('list_history', { limit: 1, offset: 2 })).transactions.map(t => t.satoshis), [100_000], 'the oldest last')
    })

    test('a payment over the cosigners\' policy is refused with the rule and the approve command', async () => {
      const before = (await ok('get_balance')).satoshis
      const text = await refused('pay', { to: thirdParty(), satoshis: 30_000, description: 'too much for the policy', idempotency_key: 'big-1' },
        /spending policy/)
      assert.match(text, /max_sats_per_tx/)
      assert.match(text, /mpc-wallet approve --wallet mcp --to \S+ --sats \d+/)
      assert.match(text, /Do not retry/)
      await logged(/mcp: pay 30000 satoshis to script [0-9a-f]+ \("too much for the policy"\): refused: refused by the cosigners' spending policy/)
      assert.equal((await ok('get_balance')).satoshis, before, 'nothing spent or reserved')
    })

    test('fetch pays a paid API behind @bsv/payment-express-middleware within max_sats', async () => {
      await refused('fetch', { url: `${app.url}/paid`, max_sats: PRICE - 1 }, /./)
      const paymentsBefore = app.wallet.payments.length
      const r = await ok('fetch', { url: `${app.url}/paid`, max_sats: 500 })
      assert.equal(r.status, 200)
      assert.deepEqual(JSON.parse(r.body), { paid: PRICE })
      assert.equal(r.paid.satoshis, PRICE)
      assert.equal(app.wallet.payments.length, paymentsBefore + 1)
      assert.equal(app.wallet.payments.at(-1).txid, r.paid.txid)
      assert.ok(app.wallet.payments.at(-1).paysUs && app.wallet.payments.at(-1).scriptsVerify)
      assert.equal(app.seen.at(-1).identityKey, identity)
    })

    test('sign_message / verify_message, encrypt / decrypt', async () => {
      const s = await ok('sign_message', { message: 'hello from the agent' })
      assert.equal(s.signer, identity)
      const { valid } = await new ProtoWallet('anyone').verifySignature({
        data: Utils.toArray('hello from the agent', 'utf8'), signature: Utils.toArray(s.signature, 'hex'), protocolID: s.protocol_id, keyID: s.key_id, counterparty: identity
      })
      assert.equal(valid, true, '@bsv/sdk verifies it')
      assert.equal((await ok('verify_message', { message: 'hello from the agent', signature: s.signature })).valid, true)
      assert.equal((await ok('verify_message', { message: 'hello from someone', signature: s.signature })).valid, false)
      const e = await ok('encrypt', { plaintext: 'a secret note' })
      assert.equal((await ok('decrypt', { ciphertext: e.ciphertext })).plaintext, 'a secret note')
      assert.deepEqual(await ok('list_certificates', {}), { total: 0, certificates: [] })
    })

    test('hostile inputs are each a clean tool error, and the server stays up', async () => {
      const pay = (args) => ({ to: thirdParty(), satoshis: 1000, description: 'hostile input', idempotency_key: randomBytes(8).toString('hex'), ...args })
      await refused('pay', pay({ satoshis: -5 }), /input schema/)
      await refused('pay', pay({ satoshis: 0 }), /satoshis must be/)
      await refused('pay', pay({ satoshis: 2.5 }), /input schema/)
      await refused('pay', pay({ satoshis: 1e30 }), /input schema/)
      await refused('pay', pay({ satoshis: 2_100_000_000_000_001 }), /satoshis must be/)
      await refused('pay', pay({ to: '4c' }), /does not parse/)
      await refused('pay', pay({ to: 'not a script' }), /not a BSV address/)
      await refused('pay', pay({ to: '00'.repeat(20_000) }), /at most 10000 bytes/)
      await refused('pay', pay({ to: PrivateKey.fromRandom().toAddress('testnet') }), /testnet address and this wallet is on mainnet/)
      await refused('pay', pay({ idempotency_key: '' }), /idempotency_key/)
      await refused('pay', pay({ extra: 1 }), /unknown field/)
      await refused('fetch', { url: 'file:///etc/passwd', max_sats: 0 }, /http:\/\/ or https:\/\//)
      await refused('fetch', { url: 'data:text/plain,hi', max_sats: 0 }, /http:\/\/ or https:\/\//)
      await refused('fetch', { url: `${app.url}/paid`, max_sats: -1 }, /input schema/)
      await refused('fetch', { url: `${app.url}/paid`, max_sats: 5000 }, /above what this wallet lets one fetch pay \(1000 satoshis\).*--max-fetch-sats/)
      const huge = 'x'.repeat(10 * 1024 * 1024)
      await refused('sign_message', { message: huge }, /more than this tool accepts/)
      await refused('pay', pay({ description: huge }), /more than this tool accepts/)
      await refused('internalize_payment', { beef: 'zz', output_index: 0, derivation_prefix: 'a', derivation_suffix: 'b', sender_identity_key: identity }, /hex/)
      await refused('list_history', { limit: 100_000 }, /limit must be/)
      // Still up and answering.
      assert.equal((await ok('wallet_status')).identity_key, identity)
      assert.ok(w.alive())
    })

    if (transportName === 'stdio') {
      test('after a restart: the idempotency key still pays once; a certificate is listed and proven', async () => {
        await w.close()
        // A certificate taken in through the BRC-100 front on the same store, as a user would.
        const token = randomBytes(16).toString('hex')
        const serve = await startServe(bin, { ...walletEnv(dir), MPC_API_TOKEN: token, MPC_ALLOWED_ORIGINS: 'http://localhost' })
        const certifier = PrivateKey.fromRandom()
        const type = Utils.toBase64(Array.from(randomBytes(32)))
        let cert
        try {
          const front = new HTTPWalletJSON('localhost', serve.url, (u, init = {}) =>
            fetch(u, { ...init, headers: { ...init.headers, Authorization: `Bearer ${token}` } }))
          cert = await MasterCertificate.issueCertificateForSubject(new ProtoWallet(certifier), identity,
            { name: 'Agent Smith', role: 'buyer' }, type, async () => `${'ab'.repeat(32)}.1`)
          await front.acquireCertificate({
            type,
            certifier: cert.certifier,
            acquisitionProtocol: 'direct',
            fields: cert.fields,
            serialNumber: cert.serialNumber,
            revocationOutpoint: cert.revocationOutpoint,
            signature: cert.signature,
            keyringRevealer: 'certifier',
            keyringForSubject: cert.masterKeyring
          })
        } finally {
          await stop(serve.child)
        }
        w = await connect(dir)
        const broadcasts = standIns.arc.accepted.length
        const again = await ok('pay', firstPay.args)
        assert.equal(again.already_paid, true)
        assert.equal(again.txid, firstPay.txid)
        assert.equal(standIns.arc.accepted.length, broadcasts, 'nothing paid again after the restart')
        await logged(/provisioned: restored/)

        const list = await ok('list_certificates', {})
        assert.equal(list.total, 1)
        const listed = list.certificates[0]
        assert.deepEqual({ ...listed, fields: [...listed.fields].sort() },
          { type, serial_number: cert.serialNumber, certifier: cert.certifier, subject: identity, fields: ['name', 'role'] })
        const verifier = PrivateKey.fromRandom()
        const proof = await ok('prove_certificate', { serial_number: cert.serialNumber, fields_to_reveal: ['role'], verifier: verifier.toPublicKey().toString() })
        assert.deepEqual(Object.keys(proof.keyring_for_verifier), ['role'])
        const c = proof.certificate
        const verifiable = new VerifiableCertificate(c.type, c.serialNumber, c.subject, c.certifier, c.revocationOutpoint, c.fields, proof.keyring_for_verifier, c.signature)
        assert.equal(await verifiable.verify(), true, '@bsv/sdk verifies the certificate')
        assert.deepEqual(await verifiable.decryptFields(new ProtoWallet(verifier)), { role: 'buyer' }, 'the verifier opens exactly the field revealed')
        await assert.rejects(verifiable.decryptFields(new ProtoWallet(PrivateKey.fromRandom())))
        await refused('prove_certificate', { serial_number: 'bm9wZQ==', fields_to_reveal: ['role'], verifier: 'anyone' }, /no certificate/)
        await refused('prove_certificate', { serial_number: cert.serialNumber, fields_to_reveal: ['age'], verifier: 'anyone' }, /./)
      })
    }

    if (transportName === 'streamable HTTP') {
      test('the MCP endpoint sits behind the front\'s door: token, Origin and Host', async () => {
        const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
        const host = new URL(w.url).host
        let r = await post(w.url, { host }, init)
        assert.equal(r.status, 401)
        assert.equal(JSON.parse(r.body).code, 'ERR_UNAUTHORIZED')
        r = await post(w.url, { host, authorization: `Bearer ${TOKEN}`, origin: 'https://evil.example' }, init)
        assert.equal(r.status, 403)
        assert.equal(JSON.parse(r.body).code, 'ERR_ORIGIN_NOT_ALLOWED')
        r = await post(w.url, { host: 'evil.example', authorization: `Bearer ${TOKEN}` }, init)
        assert.equal(r.status, 403)
        assert.equal(JSON.parse(r.body).code, 'ERR_HOST_NOT_ALLOWED')
        r = await post(w.url, { host, authorization: `Bearer ${TOKEN}` }, init)
        assert.equal(r.status, 200)
        assert.equal(w.log.out, '', 'nothing on standard output')
      })

      test('sessions are capped (mcp --max-sessions, 32 by default): one more is refused until one closes', async () => {
        const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
        const headers = { host: new URL(w.url).host, authorization: `Bearer ${TOKEN}` }
        const opened = []
        let r
        for (let i = 0; i < 40; i++) {
          r = await post(w.url, headers, init)
          if (r.status !== 200) break
          opened.push(r.headers['mcp-session-id'])
        }
        assert.notEqual(r.status, 200, 'a session past the cap is refused')
        assert.ok(opened.length > 0 && opened.length < 32, `${opened.length} opened beside the client's own`)
        assert.match(r.body, /32 MCP sessions are open, the most this server keeps \(mcp --max-sessions\)/)
        assert.match(r.body, /close one/)
        await logged('an MCP session was refused')

        // The open ones still answer; closing one (DELETE) makes room for a new one.
        const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} })
        const session = opened.at(-1)
        await post(w.url, { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' }, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))
        r = await post(w.url, { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' }, list)
        assert.equal(r.status, 200, r.body)
        assert.match(r.body, /wallet_status/)
        r = await post(w.url, { ...headers, 'mcp-session-id': session }, '', 'DELETE')
        assert.ok(r.status < 300, `DELETE answered ${r.status}: ${r.body}`)
        r = await post(w.url, headers, init)
        assert.equal(r.status, 200, r.body)
        opened.splice(-1, 1, r.headers['mcp-session-id'])
        // The official client's own session was never at risk.
        const status = await ok('wallet_status')
        assert.ok(status)
        for (const id of opened) await post(w.url, { ...headers, 'mcp-session-id': id }, '', 'DELETE')
        r = await post(w.url, headers, init)
        assert.equal(r.status, 200, 'every closed session made room')
      })
    }
  })
}
