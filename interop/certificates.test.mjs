// Identity certificates (BRC-52), live against the reference TypeScript SDK (@bsv/sdk 2.1.0):
// certifier ProtoWallets issue certificates with MasterCertificate.issueCertificateForSubject,
// `mpc-wallet serve` (the MPC wallet, embedded default) acquires them directly through
// HTTPWalletJSON, refuses altered ones and keyrings made for another subject without storing
// anything, lists them with paging, proves them to a verifier who opens the revealed fields with
// VerifiableCertificate (and to "anyone"), relinquishes them, keeps them over a restart, and
// answers a server's certificatesToRequest (@bsv/auth-express-middleware) when @bsv/sdk's
// AuthFetch runs over the wallet, and acquires a certificate by issuance from an express certifier
// behind that middleware, over the wallet's own BRC-103 client. Uses target/debug/mpc-wallet.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import express from 'express'
import { createAuthMiddleware } from '@bsv/auth-express-middleware'
import {
  AuthFetch, Certificate, HTTPWalletJSON, MasterCertificate, PrivateKey, ProtoWallet, Utils, VerifiableCertificate,
  createNonce, verifyNonce
} from '@bsv/sdk'
import { startServe, stop } from './serve.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = process.env.MPC_WALLET_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'mpc-wallet')
const dir = mkdtempSync(join(tmpdir(), 'mpc-certificates-'))
const TOKEN = randomBytes(32).toString('hex')

const walletEnv = {
  MPC_WALLET_ID: 'certificates',
  MPC_SHARE_SECRET: 'certificates interop secret',
  MPC_STORAGE_PATH: join(dir, 'agent.db'),
  MPC_ALLOWED_ORIGINS: 'http://localhost',
  MPC_API_TOKEN: TOKEN
}

const connect = url => new HTTPWalletJSON('localhost', url, (u, init = {}) =>
  fetch(u, { ...init, headers: { ...init.headers, Authorization: `Bearer ${TOKEN}` } }))

const newWallet = () => {
  const key = PrivateKey.fromRandom()
  return { wallet: new ProtoWallet(key), key: key.toPublicKey().toString() }
}
const newType = () => Utils.toBase64(Array.from(randomBytes(32)))
const OUTPOINT = `${'ab'.repeat(32)}.1`

let serve, wallet, identity
const certifierA = newWallet()
const certifierB = newWallet()
const verifier = newWallet()
const PERSON = newType()
const EMAIL = newType()
// Mixed case, punctuation and digits: the signed bytes order fields by localeCompare.
const FIELDS = { firstName: 'Alice', Email: 'alice@example.com', age: '42', _tag: 'x', 'b-2': 'y' }

before(async () => {
  serve = await startServe(bin, walletEnv)
  wallet = connect(serve.url)
  identity = (await wallet.getPublicKey({ identityKey: true })).publicKey
})

after(async () => {
  if (serve) await stop(serve.child)
  rmSync(dir, { recursive: true, force: true })
})

/** A certificate `certifier` issues to the wallet, as acquireCertificate's direct arguments. */
async function issue (certifier, type, fields = FIELDS) {
  const cert = await MasterCertificate.issueCertificateForSubject(certifier.wallet, identity, fields, type, async () => OUTPOINT)
  return {
    type: cert.type,
    certifier: cert.certifier,
    acquisitionProtocol: 'direct',
    fields: cert.fields,
    serialNumber: cert.serialNumber,
    revocationOutpoint: cert.revocationOutpoint,
    signature: cert.signature,
    keyringRevealer: 'certifier',
    keyringForSubject: cert.masterKeyring
  }
}

/** Stops an HTTP server and drops its keep-alive connections, which would hold the test open. */
const close = listener => { listener.close(); listener.closeAllConnections() }

const count = async () => (await wallet.listCertificates({ certifiers: [], types: [], limit: 100 })).totalCertificates

async function refused (args, parameter) {
  await assert.rejects(wallet.acquireCertificate(args), e => {
    assert.equal(e.code, 6, e.message)
    assert.equal(e.parameter, parameter, e.message)
    return true
  })
}

test('acquire direct: stored as issued, its fields open for the wallet', async () => {
  const args = await issue(certifierA, PERSON)
  const got = await wallet.acquireCertificate(args)
  assert.deepEqual(got, {
    type: args.type,
    subject: identity,
    serialNumber: args.serialNumber,
    certifier: certifierA.key,
    revocationOutpoint: OUTPOINT,
    signature: args.signature,
    fields: args.fields
  })
  assert.equal(await new Certificate(got.type, got.serialNumber, got.subject, got.certifier, got.revocationOutpoint, got.fields, got.signature).verify(), true)
  const listed = await wallet.listCertificates({ certifiers: [certifierA.key], types: [PERSON] })
  assert.equal(listed.totalCertificates, 1)
  assert.deepEqual(listed.certificates[0].keyring, args.keyringForSubject)
  assert.equal(listed.certificates[0].verifier, certifierA.key)
})

test('acquire direct refusals name the parameter and store nothing', async () => {
  const before = await count()
  const good = await issue(certifierA, PERSON)
  const fields = { ...good.fields, age: (await issue(certifierA, PERSON)).fields.age }
  await refused({ ...good, fields }, 'signature')
  const sig = Utils.toArray(good.signature, 'hex')
  sig[sig.length - 1] ^= 1
  await refused({ ...good, signature: Utils.toHex(sig) }, 'signature')
  await refused({ ...good, signature: (await issue(certifierA, PERSON)).signature }, 'signature')
  // Signed for this wallet, but the keyring was made for another subject.
  const other = PrivateKey.fromRandom().toPublicKey().toString()
  const { certificateFields, masterKeyring } = await MasterCertificate.createCertificateFields(certifierA.wallet, other, FIELDS)
  const mislaid = new Certificate(PERSON, Utils.toBase64(Array.from(randomBytes(32))), identity, certifierA.key, OUTPOINT, certificateFields)
  await mislaid.sign(certifierA.wallet)
  await refused({ ...good, fields: mislaid.fields, serialNumber: mislaid.serialNumber, signature: mislaid.signature, keyringForSubject: masterKeyring }, 'keyringForSubject')
  const { age, ...short } = good.keyringForSubject
  await refused({ ...good, keyringForSubject: short }, 'keyringForSubject')
  for (const missing of ['serialNumber', 'signature', 'revocationOutpoint', 'keyringRevealer', 'keyringForSubject']) {
    const args = { ...good }
    delete args[missing]
    await refused(args, missing)
  }
  await refused({ ...good, acquisitionProtocol: 'telepathy' }, 'acquisitionProtocol')
  await refused({ ...good, privileged: true, privilegedReason: 'because' }, 'privileged')
  assert.equal(await count(), before, 'nothing was stored')
})

test('list: certifiers, types and paging', async () => {
  const t = newType()
  const made = []
  for (const c of [certifierA, certifierB, certifierA]) {
    const args = await issue(c, t, { n: String(made.length) })
    await wallet.acquireCertificate(args)
    made.push(args.serialNumber)
  }
  const page = await wallet.listCertificates({ certifiers: [certifierA.key, certifierB.key], types: [t], limit: 2, offset: 1 })
  assert.equal(page.totalCertificates, 3)
  assert.deepEqual(page.certificates.map(c => c.serialNumber), made.slice(1))
  const onlyA = await wallet.listCertificates({ certifiers: [certifierA.key], types: [t] })
  assert.deepEqual(onlyA.certificates.map(c => c.serialNumber), [made[0], made[2]])
  const none = await wallet.listCertificates({ certifiers: [verifier.key], types: [t] })
  assert.deepEqual(none, { totalCertificates: 0, certificates: [] })
  await assert.rejects(wallet.listCertificates({ certifiers: ['zz'], types: [] }), e => e.code === 6 && e.parameter === 'certifiers')
  await assert.rejects(wallet.listCertificates({ certifiers: [], types: [], limit: 0 }), e => e.code === 6 && e.parameter === 'limit')
})

test('prove: the verifier opens exactly the named fields; so does anyone', async () => {
  const args = await issue(certifierB, EMAIL)
  await wallet.acquireCertificate(args)
  const cert = { type: EMAIL, serialNumber: args.serialNumber, certifier: certifierB.key }
  const { keyringForVerifier } = await wallet.proveCertificate({ certificate: cert, fieldsToReveal: ['Email', 'age'], verifier: verifier.key })
  assert.deepEqual(Object.keys(keyringForVerifier).sort(), ['Email', 'age'])
  const verifiable = new VerifiableCertificate(EMAIL, args.serialNumber, identity, certifierB.key, OUTPOINT, args.fields, keyringForVerifier, args.signature)
  assert.equal(await verifiable.verify(), true)
  assert.deepEqual(await verifiable.decryptFields(verifier.wallet), { Email: 'alice@example.com', age: '42' })
  // Another verifier cannot open them.
  await assert.rejects(verifiable.decryptFields(certifierA.wallet))

  const forAnyone = await wallet.proveCertificate({ certificate: cert, fieldsToReveal: ['firstName'], verifier: 'anyone' })
  const open = new VerifiableCertificate(EMAIL, args.serialNumber, identity, certifierB.key, OUTPOINT, args.fields, forAnyone.keyringForVerifier, args.signature)
  assert.deepEqual(await open.decryptFields(new ProtoWallet('anyone')), { firstName: 'Alice' })

  await assert.rejects(wallet.proveCertificate({ certificate: cert, fieldsToReveal: ['nickname'], verifier: verifier.key }),
    e => e.code === 6 && e.parameter === 'fieldsToReveal')
  await assert.rejects(wallet.proveCertificate({ certificate: { type: EMAIL, serialNumber: newType() }, fieldsToReveal: [], verifier: verifier.key }),
    e => e.code === 6 && e.parameter === 'certificate')
  await assert.rejects(wallet.proveCertificate({ certificate: cert, fieldsToReveal: ['age'], verifier: verifier.key, privileged: true, privilegedReason: 'because' }),
    e => e.code === 6 && e.parameter === 'privileged')
})

test('relinquish: gone for list and prove', async () => {
  const t = newType()
  const args = await issue(certifierA, t)
  await wallet.acquireCertificate(args)
  const name = { type: t, serialNumber: args.serialNumber, certifier: certifierA.key }
  assert.deepEqual(await wallet.relinquishCertificate(name), { relinquished: true })
  assert.equal((await wallet.listCertificates({ certifiers: [], types: [t] })).totalCertificates, 0)
  await assert.rejects(wallet.proveCertificate({ certificate: name, fieldsToReveal: ['age'], verifier: verifier.key }), e => e.code === 6)
  await assert.rejects(wallet.relinquishCertificate(name), e => /no certificate/.test(e.message))
})

test('a server asks for certificates: AuthFetch over the MPC wallet answers certificatesToRequest', async () => {
  const args = await issue(certifierA, PERSON)
  await wallet.acquireCertificate(args)
  const server = newWallet()
  const received = []
  const app = express()
  app.use(express.json())
  app.use(createAuthMiddleware({
    wallet: server.wallet,
    certificatesToRequest: { certifiers: [certifierA.key], types: { [PERSON]: ['firstName', 'age'] } },
    onCertificatesReceived: (sender, certs) => { received.push({ sender, certs }) }
  }))
  app.post('/hello', (req, res) => res.json({ you: req.auth.identityKey, said: req.body }))
  const listener = await new Promise(resolve => { const l = app.listen(0, '127.0.0.1', () => resolve(l)) })
  try {
    const url = `http://127.0.0.1:${listener.address().port}/hello`
    const res = await new AuthFetch(wallet).fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ hi: 1 }) })
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { you: identity, said: { hi: 1 } })
    assert.ok(received.length >= 1, 'the server received certificates')
    assert.equal(received[0].sender, identity)
    const certs = received.flatMap(r => r.certs).filter(c => c.type === PERSON && c.certifier === certifierA.key)
    assert.ok(certs.length >= 1)
    for (const c of certs) {
      const v = new VerifiableCertificate(c.type, c.serialNumber, c.subject, c.certifier, c.revocationOutpoint, c.fields, c.keyring, c.signature)
      assert.equal(await v.verify(), true)
      assert.deepEqual(await v.decryptFields(server.wallet), { firstName: 'Alice', age: '42' })
    }
  } finally {
    close(listener)
  }
})

/**
 * A certifier as the toolbox's issuance expects one: `POST /signCertificate` behind
 * @bsv/auth-express-middleware, checking the client's nonce, the master keyring (every field
 * must open) and answering a signed certificate whose serial number is its HMAC of both nonces.
 * `lie` makes it forge the serial number.
 */
async function startCertifier (certifier, { lie = false } = {}) {
  const seen = []
  const app = express()
  app.use(express.json())
  app.use(createAuthMiddleware({ wallet: certifier.wallet }))
  app.post('/signCertificate', async (req, res) => {
    const subject = req.auth.identityKey
    const { clientNonce, type, fields, masterKeyring } = req.body
    try {
      assert.equal(await verifyNonce(clientNonce, certifier.wallet, subject), true)
      const opened = await MasterCertificate.decryptFields(certifier.wallet, masterKeyring, fields, subject)
      seen.push({ subject, opened })
      const serverNonce = await createNonce(certifier.wallet, subject)
      const { hmac } = await certifier.wallet.createHmac({
        data: Utils.toArray(clientNonce + serverNonce, 'base64'),
        protocolID: [2, 'certificate issuance'],
        keyID: serverNonce + clientNonce,
        counterparty: subject
      })
      const serial = lie ? Array.from(randomBytes(32)) : hmac
      const cert = new Certificate(type, Utils.toBase64(serial), subject, certifier.key, OUTPOINT, fields)
      await cert.sign(certifier.wallet)
      res.json({ certificate: cert, serverNonce })
    } catch (e) {
      res.status(400).json({ status: 'error', description: String(e) })
    }
  })
  const listener = await new Promise(resolve => { const l = app.listen(0, '127.0.0.1', () => resolve(l)) })
  return { url: `http://127.0.0.1:${listener.address().port}`, seen, close: () => close(listener) }
}

test('acquire by issuance from a certifier behind BRC-103', async () => {
  const certifier = newWallet()
  const server = await startCertifier(certifier)
  try {
    const type = newType()
    const got = await wallet.acquireCertificate({
      type, certifier: certifier.key, acquisitionProtocol: 'issuance', certifierUrl: server.url, fields: { name: 'Alice', Role: 'agent' }
    })
    assert.deepEqual(server.seen, [{ subject: identity, opened: { name: 'Alice', Role: 'agent' } }])
    assert.equal(got.subject, identity)
    assert.equal(got.certifier, certifier.key)
    assert.equal(await new Certificate(got.type, got.serialNumber, got.subject, got.certifier, got.revocationOutpoint, got.fields, got.signature).verify(), true)
    const listed = await wallet.listCertificates({ certifiers: [certifier.key], types: [type] })
    assert.equal(listed.totalCertificates, 1)
    // The stored master keyring is the one the wallet made for the certifier: it proves.
    const { keyringForVerifier } = await wallet.proveCertificate({ certificate: { type, certifier: certifier.key }, fieldsToReveal: ['Role'], verifier: verifier.key })
    const v = new VerifiableCertificate(type, got.serialNumber, identity, certifier.key, got.revocationOutpoint, got.fields, keyringForVerifier, got.signature)
    assert.deepEqual(await v.decryptFields(verifier.wallet), { Role: 'agent' })
  } finally {
    server.close()
  }
})

test('issuance refusals: a lying certifier, the wrong certifier key, a certifier that is down', async () => {
  const before = await count()
  const certifier = newWallet()
  const liar = await startCertifier(certifier, { lie: true })
  try {
    const args = { type: newType(), certifier: certifier.key, acquisitionProtocol: 'issuance', certifierUrl: liar.url, fields: { name: 'Alice' } }
    await assert.rejects(wallet.acquireCertificate(args), e => /serial number/.test(e.message))
    // The server authenticates as another key than the certifier named.
    await assert.rejects(wallet.acquireCertificate({ ...args, certifier: newWallet().key }), e => /authenticated as/.test(e.message))
  } finally {
    liar.close()
  }
  await assert.rejects(wallet.acquireCertificate({
    type: newType(), certifier: certifier.key, acquisitionProtocol: 'issuance', certifierUrl: 'http://127.0.0.1:9', fields: { name: 'Alice' }
  }), e => /cannot connect/.test(e.message))
  await assert.rejects(wallet.acquireCertificate({ type: newType(), certifier: certifier.key, acquisitionProtocol: 'issuance', fields: {} }),
    e => e.code === 6 && e.parameter === 'certifierUrl')
  assert.equal(await count(), before, 'nothing was stored')
})

test('certificates survive a restart', async () => {
  const before = await wallet.listCertificates({ certifiers: [], types: [], limit: 100 })
  assert.ok(before.totalCertificates >= 3)
  await stop(serve.child)
  serve = await startServe(bin, walletEnv)
  wallet = connect(serve.url)
  const after = await wallet.listCertificates({ certifiers: [], types: [], limit: 100 })
  assert.deepEqual(after, before)
  const c = after.certificates[0]
  const { keyringForVerifier } = await wallet.proveCertificate({ certificate: { type: c.type, serialNumber: c.serialNumber, certifier: c.certifier }, fieldsToReveal: [Object.keys(c.fields)[0]], verifier: verifier.key })
  assert.equal(Object.keys(keyringForVerifier).length, 1)
})
