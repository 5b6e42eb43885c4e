// Live interop: the reference TypeScript SDK (@bsv/sdk 2.1.0) drives `mpc-wallet serve` (the MPC
// wallet, embedded default) through HTTPWalletJSON and cross-checks every result against
// ProtoWallet counterparties. Run by .ci/run after the Rust build (it uses target/debug/mpc-wallet).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HTTPWalletJSON, ProtoWallet, PrivateKey, PublicKey, Point, Schnorr, BigNumber, Hash, P2PKH, Spend, Transaction, UnlockingScript } from '@bsv/sdk'

import { startServe, stop, testVars } from './serve.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = process.env.MPC_WALLET_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'mpc-wallet')
const dir = mkdtempSync(join(tmpdir(), 'mpc-interop-'))
// HTTPWalletJSON in Node sends `Origin: http://localhost` for the originator 'localhost': the
// front allows exactly that origin, and every request needs the API token.
const ORIGIN = 'http://localhost'
const token = process.env.MPC_API_TOKEN ?? randomBytes(32).toString('hex')
let server
let wallet
let identity

// The README's snippet: HTTPWalletJSON's httpClient argument adds the bearer token.
const withToken = (url, init = {}) =>
  fetch(url, { ...init, headers: { ...init.headers, Authorization: `Bearer ${token}` } })
const connect = url => new HTTPWalletJSON('localhost', url, withToken)

// The wallet's configuration: `serve` and `sign-tx` are the same agent on the same stores.
const walletEnv = () => ({
  PATH: process.env.PATH,
  ...testVars(),
  MPC_WALLET_ID: 'interop',
  MPC_SHARE_SECRET: 'interop test secret',
  MPC_STORAGE_PATH: join(dir, 'agent.db'),
  MPC_ALLOWED_ORIGINS: ORIGIN,
  MPC_API_TOKEN: token
})

const startWallet = () => startServe(bin, walletEnv())

before(async () => {
  server = await startWallet()
  wallet = connect(server.url)
  identity = (await wallet.getPublicKey({ identityKey: true })).publicKey
})

after(async () => {
  if (server) await stop(server.child)
  rmSync(dir, { recursive: true, force: true })
})

const protocols = [
  [0, 'interop check'],
  [1, 'Mpc Wallet Interop'],
  [2, 'brc100 live test']
]
const keyIDs = ['1', 'héllo wörld ✓ ключ', 'x'.repeat(200)]

test('derived keys match the counterparty view both ways', async () => {
  const cp = new ProtoWallet(PrivateKey.fromRandom())
  const cpId = (await cp.getPublicKey({ identityKey: true })).publicKey
  for (const protocolID of protocols) {
    for (const keyID of keyIDs) {
      const theirsByUs = await wallet.getPublicKey({ protocolID, keyID, counterparty: cpId })
      const theirsByThem = await cp.getPublicKey({ protocolID, keyID, counterparty: identity, forSelf: true })
      assert.equal(theirsByUs.publicKey, theirsByThem.publicKey)
      const oursByUs = await wallet.getPublicKey({ protocolID, keyID, counterparty: cpId, forSelf: true })
      const oursByThem = await cp.getPublicKey({ protocolID, keyID, counterparty: identity })
      assert.equal(oursByUs.publicKey, oursByThem.publicKey)
    }
  }
})

test('our signatures verify at the counterparty and for anyone', async () => {
  const cp = new ProtoWallet(PrivateKey.fromRandom())
  const cpId = (await cp.getPublicKey({ identityKey: true })).publicKey
  const anyone = new ProtoWallet(new PrivateKey(1))
  const data = Array.from(Buffer.from('signed by a 2-of-3 MPC wallet'))
  for (const protocolID of protocols) {
    const keyID = keyIDs[1]
    const { signature } = await wallet.createSignature({ data, protocolID, keyID, counterparty: cpId })
    const ok = await cp.verifySignature({ data, signature, protocolID, keyID, counterparty: identity })
    assert.equal(ok.valid, true)
    // Counterparty defaults to anyone.
    const pub = await wallet.createSignature({ data, protocolID, keyID })
    const okAnyone = await anyone.verifySignature({ data, signature: pub.signature, protocolID, keyID, counterparty: identity })
    assert.equal(okAnyone.valid, true)
    // And our own verifier agrees with the counterparty's signature.
    const theirs = await cp.createSignature({ data, protocolID, keyID, counterparty: identity })
    const v = await wallet.verifySignature({ data, signature: theirs.signature, protocolID, keyID, counterparty: cpId })
    assert.equal(v.valid, true)
  }
})

test('ciphertexts decrypt both ways and tampered ones are refused; HMACs agree', async () => {
  const cp = new ProtoWallet(PrivateKey.fromRandom())
  const cpId = (await cp.getPublicKey({ identityKey: true })).publicKey
  const plaintext = Array.from(Buffer.from('for your eyes only'))
  for (const protocolID of protocols) {
    const keyID = keyIDs[0]
    const ours = await wallet.encrypt({ plaintext, protocolID, keyID, counterparty: cpId })
    const atThem = await cp.decrypt({ ciphertext: ours.ciphertext, protocolID, keyID, counterparty: identity })
    assert.deepEqual(atThem.plaintext, plaintext)
    const theirs = await cp.encrypt({ plaintext, protocolID, keyID, counterparty: identity })
    const atUs = await wallet.decrypt({ ciphertext: theirs.ciphertext, protocolID, keyID, counterparty: cpId })
    assert.deepEqual(atUs.plaintext, plaintext)
    const tampered = [...theirs.ciphertext]
    tampered[40] ^= 1
    await assert.rejects(wallet.decrypt({ ciphertext: tampered, protocolID, keyID, counterparty: cpId }), /Decryption failed/)
    const data = Array.from(Buffer.from('authenticate me'))
    const a = await wallet.createHmac({ data, protocolID, keyID, counterparty: cpId })
    const b = await cp.createHmac({ data, protocolID, keyID, counterparty: identity })
    assert.deepEqual(a.hmac, b.hmac)
    const v = await wallet.verifyHmac({ data, hmac: b.hmac, protocolID, keyID, counterparty: cpId })
    assert.equal(v.valid, true)
  }
})

test('specific key linkage decrypts at the verifier to what the counterparty computes', async () => {
  const cpKey = PrivateKey.fromRandom()
  const cp = new ProtoWallet(cpKey)
  const cpId = (await cp.getPublicKey({ identityKey: true })).publicKey
  const verifier = new ProtoWallet(PrivateKey.fromRandom())
  const verifierId = (await verifier.getPublicKey({ identityKey: true })).publicKey
  const protocolID = protocols[2]
  const keyID = keyIDs[1]
  const r = await wallet.revealSpecificKeyLinkage({ counterparty: cpId, verifier: verifierId, protocolID, keyID })
  assert.equal(r.prover, identity)
  const { plaintext } = await verifier.decrypt({
    ciphertext: r.encryptedLinkage,
    protocolID: [2, `specific linkage revelation ${protocolID[0]} ${protocolID[1]}`],
    keyID,
    counterparty: identity
  })
  assert.deepEqual(plaintext, cp.keyDeriver.revealSpecificSecret(identity, protocolID, keyID))
})

test('counterparty linkage: the joint Schnorr proof verifies with @bsv/sdk', async () => {
  const cpKey = PrivateKey.fromRandom()
  const cp = new ProtoWallet(cpKey)
  const cpId = (await cp.getPublicKey({ identityKey: true })).publicKey
  const verifierKey = PrivateKey.fromRandom()
  const verifier = new ProtoWallet(verifierKey)
  const verifierId = (await verifier.getPublicKey({ identityKey: true })).publicKey
  const r = await wallet.revealCounterpartyKeyLinkage({ counterparty: cpId, verifier: verifierId })
  assert.equal(r.prover, identity)
  assert.equal(r.counterparty, cpId)
  const open = async ciphertext => (await verifier.decrypt({
    ciphertext,
    protocolID: [2, 'counterparty linkage revelation'],
    keyID: r.revelationTime,
    counterparty: identity
  })).plaintext
  const linkage = await open(r.encryptedLinkage)
  // What the counterparty computes itself: its key times our identity.
  assert.deepEqual(linkage, cp.keyDeriver.revealCounterpartySecret(identity))
  const bin = await open(r.encryptedLinkageProof)
  const proof = {
    R: Point.fromDER(bin.slice(0, 33)),
    SPrime: Point.fromDER(bin.slice(33, 66)),
    z: new BigNumber(bin.slice(66))
  }
  const ok = new Schnorr().verifyProof(
    PublicKey.fromString(identity),
    PublicKey.fromString(cpId),
    Point.fromDER(linkage),
    proof
  )
  assert.equal(ok, true)
  // A proof for another shared secret fails, so the check is real.
  const wrong = Point.fromDER(cp.keyDeriver.revealCounterpartySecret(verifierId))
  assert.equal(new Schnorr().verifyProof(PublicKey.fromString(identity), PublicKey.fromString(cpId), wrong, proof), false)
  await assert.rejects(wallet.revealCounterpartyKeyLinkage({ counterparty: 'self', verifier: verifierId }), /counterparty=self/)
})

test('bad input answers with the ts-sdk messages', async () => {
  const cases = [
    [{ protocolID: [0, 'abc'], keyID: '1' }, 'Protocol names must be 5 characters or more'],
    [{ protocolID: [0, 'a'.repeat(401)], keyID: '1' }, 'Protocol names must be 400 characters or less'],
    [{ protocolID: [0, 'bad-chars!'], keyID: '1' }, 'Protocol names can only contain letters, numbers and spaces'],
    [{ protocolID: [3, 'hello world'], keyID: '1' }, 'Protocol security level must be 0, 1, or 2'],
    [{ protocolID: [0, 'hello world'], keyID: 'k'.repeat(801) }, 'Key IDs must be 800 characters or less'],
    [{ protocolID: [0, 'hello world'], keyID: '1', counterparty: '02abcd' }, 'Unknown point format']
  ]
  for (const [args, message] of cases) {
    await assert.rejects(wallet.getPublicKey(args), e => e.message.includes(message), JSON.stringify(args).slice(0, 80))
  }
  await assert.rejects(wallet.getPublicKey({ protocolID: [0, 'hello world'], keyID: '' }), /protocolID and keyID are required/)
  await assert.rejects(wallet.createSignature({ protocolID: [0, 'hello world'], keyID: '1' }), /args.data or args.hashToDirectlySign must be valid/)
})

// A raw request to the front; `host` overrides the Host header (fetch does not allow that).
function raw (path, { method = 'POST', headers = {}, body, host } = {}) {
  const url = new URL(path, server.url)
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: { ...headers, ...(host ? { Host: host } : {}) } }, res => {
      let data = ''
      res.on('data', d => { data += d })
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data ? JSON.parse(data) : null }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

function refused (r, status, code) {
  assert.equal(r.status, status, JSON.stringify(r.body))
  assert.equal(r.body.isError, true)
  assert.equal(r.body.code, code)
  return r.body.message
}

test('the front: other origins, missing tokens and rebound hosts are refused', async () => {
  const auth = { Authorization: `Bearer ${token}` }
  // Through HTTPWalletJSON: without the token, and from an originator that is not allowed.
  await assert.rejects(new HTTPWalletJSON('localhost', server.url).getPublicKey({ identityKey: true }), /MPC_API_TOKEN/)
  await assert.rejects(new HTTPWalletJSON('evil.example', server.url, withToken).getPublicKey({ identityKey: true }), /MPC_ALLOWED_ORIGINS/)
  // The attack a web page can make without a preflight: text/plain with its own Origin.
  const hash = Array.from(randomBytes(32))
  const args = JSON.stringify({ protocolID: [0, 'front door'], keyID: '1', hashToDirectlySign: hash })
  for (const path of ['/createSignature', '/decrypt', '/revealCounterpartyKeyLinkage']) {
    const r = await raw(path, { headers: { ...auth, Origin: 'https://evil.example', 'Content-Type': 'text/plain' }, body: args })
    assert.match(refused(r, 403, 'ERR_ORIGIN_NOT_ALLOWED'), /MPC_ALLOWED_ORIGINS/)
    assert.equal(r.headers['access-control-allow-origin'], undefined)
  }
  // The preflight: no grant for another origin, an echo for ours.
  const ask = { 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type, authorization' }
  const evil = await raw('/createSignature', { method: 'OPTIONS', headers: { ...ask, Origin: 'https://evil.example' } })
  refused(evil, 403, 'ERR_ORIGIN_NOT_ALLOWED')
  assert.equal(evil.headers['access-control-allow-origin'], undefined)
  const ours = await raw('/createSignature', { method: 'OPTIONS', headers: { ...ask, Origin: ORIGIN } })
  assert.equal(ours.status, 204)
  assert.equal(ours.headers['access-control-allow-origin'], ORIGIN)
  assert.match(ours.headers['access-control-allow-headers'], /authorization/)
  // DNS rebinding: a page on attacker.example resolving to 127.0.0.1.
  const port = new URL(server.url).port
  const rebound = await raw('/getPublicKey', {
    host: `attacker.example:${port}`,
    headers: { ...auth, 'Content-Type': 'application/json' },
    body: '{"identityKey":true}'
  })
  assert.match(refused(rebound, 403, 'ERR_HOST_NOT_ALLOWED'), /MPC_ALLOWED_HOSTS/)
  // Only JSON bodies; a hash to sign is a whole 32-byte digest.
  refused(await raw('/createSignature', { headers: { ...auth, 'Content-Type': 'text/plain' }, body: args }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE')
  for (const h of [[], Array.from(randomBytes(33))]) {
    await assert.rejects(
      wallet.createSignature({ protocolID: [0, 'front door'], keyID: '1', hashToDirectlySign: h }),
      e => e.code === 6 && e.parameter === 'hashToDirectlySign' && /32 bytes/.test(e.message)
    )
  }
  const { signature } = await wallet.createSignature({ protocolID: [0, 'front door'], keyID: '1', hashToDirectlySign: hash })
  assert.ok(signature.length > 60)
  // /health needs no token.
  const health = await fetch(`${server.url}/health`)
  assert.equal(health.status, 200)
})

test('wallet info methods', async () => {
  assert.deepEqual(await wallet.isAuthenticated({}), { authenticated: true })
  assert.deepEqual(await wallet.getNetwork({}), { network: 'mainnet' })
  assert.match((await wallet.getVersion({})).version, /^mpc-wallet-\d+\.\d+\.\d+$/)
  assert.deepEqual(await wallet.listCertificates({ certifiers: [], types: [] }), { totalCertificates: 0, certificates: [] })
  // Every method error carries a BRC-100 numeric code: 1 (WalletError's) with the toolbox's name
  // and our kind, where it is neither 6 nor 7. Discovery without an overlay is one.
  const unsupported = await raw('/discoverByIdentityKey', {
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ identityKey: identity })
  })
  assert.match(refused(unsupported, 400, 1), /set MPC_LOOKUP_URL/)
  assert.equal(unsupported.body.name, 'WERR_NOT_IMPLEMENTED')
  assert.equal(unsupported.body.kind, 'unsupported')
  // The books are open even without chain services: an empty basket lists nothing.
  assert.deepEqual(await wallet.listOutputs({ basket: 'x' }), { totalOutputs: 0, outputs: [] })
})

/**
 * Runs the wallet binary with `input` on standard input; resolves to its standard output. Not
 * execFileSync: a blocked event loop keeps fetch's pooled connections past the server's idle
 * timeout, and the next request would take one the server already closed.
 */
function runWallet (args, input) {
  return new Promise((resolve, reject) => {
    const child = execFile(bin, args, { env: walletEnv(), encoding: 'utf8' }, (error, out, err) =>
      error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out))
    child.stdin.end(input)
  })
}

test('transactions signed by the MPC wallet pass the @bsv/sdk Spend interpreter, root and child keys mixed', async () => {
  const hex = n => randomBytes(n).toString('hex')
  const root = PublicKey.fromString(identity)
  // A child key root + h*G, as the wallet derives it from a tweak h (below the group order).
  const child = tweak => {
    const p = root.add(new PrivateKey(tweak, 'hex').toPublicKey())
    return new PublicKey(p.x, p.y)
  }
  for (const n of [1, 3, 10]) {
    const tweaks = Array.from({ length: n }, (_, i) => (i % 2 === 1 ? '00' + hex(31) : null))
    const tx = new Transaction()
    tweaks.forEach((tweak, i) => {
      const key = tweak ? child(tweak) : root
      const source = new Transaction()
      source.addInput({ sourceTXID: hex(32), sourceOutputIndex: 0, unlockingScript: new UnlockingScript(), sequence: 0xffffffff })
      source.addOutput({ lockingScript: new P2PKH().lock(Hash.hash160(key.encode(true))), satoshis: 1000 + i })
      tx.addInput({ sourceTransaction: source, sourceOutputIndex: 0, unlockingScript: new UnlockingScript(), sequence: 0xfffffffe - i })
    })
    tx.addOutput({ lockingScript: new P2PKH().lock(PrivateKey.fromRandom().toAddress()), satoshis: 500 * n })
    const args = ['sign-tx', ...tweaks.flatMap((t, i) => (t ? ['--tweak', `${i}=${t}`] : [])), '-']
    const out = await runWallet(args, tx.toHexEF())
    assert.match(out, /^provisioned: restored$/m)
    const signed = Transaction.fromHex(out.match(/^signed: ([0-9a-f]+)$/m)[1])
    assert.equal(signed.inputs.length, n)
    // @bsv/sdk's script interpreter on input i of `signed`, spending what `tx` said it spends.
    const spendOf = i => {
      const source = tx.inputs[i].sourceTransaction
      return new Spend({
        sourceTXID: source.id('hex'),
        sourceOutputIndex: 0,
        lockingScript: source.outputs[0].lockingScript,
        sourceSatoshis: source.outputs[0].satoshis,
        transactionVersion: signed.version,
        otherInputs: signed.inputs.filter((_, j) => j !== i),
        unlockingScript: signed.inputs[i].unlockingScript,
        inputSequence: signed.inputs[i].sequence,
        inputIndex: i,
        outputs: signed.outputs,
        lockTime: signed.lockTime
      })
    }
    signed.inputs.forEach((_, i) => assert.equal(spendOf(i).validate(), true, `${n} inputs: input ${i}`))
    // The same transaction with one output changed no longer validates: the signatures commit to it.
    signed.outputs[0].satoshis += 1
    assert.throws(() => spendOf(0).validate())
  }
})

test('a restarted server restores the wallet; earlier signatures still verify', async () => {
  const cp = new ProtoWallet(PrivateKey.fromRandom())
  const cpId = (await cp.getPublicKey({ identityKey: true })).publicKey
  const data = Array.from(Buffer.from('before the restart'))
  const args = { protocolID: protocols[0], keyID: '7', counterparty: cpId }
  const { signature } = await wallet.createSignature({ ...args, data })
  await stop(server.child)
  server = await startWallet()
  assert.match(server.out, /^provisioned: restored$/m)
  wallet = connect(server.url)
  assert.equal((await wallet.getPublicKey({ identityKey: true })).publicKey, identity)
  const ok = await wallet.verifySignature({ ...args, data, signature, forSelf: true })
  assert.equal(ok.valid, true)
})
