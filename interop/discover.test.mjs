// Discovery (discoverByIdentityKey, discoverByAttributes), live against the reference TypeScript
// SDK (@bsv/sdk 2.1.0): certifier ProtoWallets issue certificates with
// MasterCertificate.issueCertificateForSubject, each subject reveals fields to "anyone"
// (MasterCertificate.createKeyringForVerifier) in an identity token (a PushDrop output,
// protocol [1, 'identity'], in a transaction sent as BEEF), and a stand-in overlay on 127.0.0.1
// answers `POST /lookup` with them. `mpc-wallet serve` (the MPC wallet, embedded default) asks it
// the query the wallet toolbox would, keeps only certificates that verify and open, from
// certifiers of MPC_TRUSTED_CERTIFIERS, reaching MPC_TRUST_LEVEL. When /tmp/ref holds the
// toolbox (@bsv/wallet-toolbox 2.1.26), its parseResults and transformVerifiableCertificatesWithTrust
// read the same tokens and must give the same result. Uses target/debug/mpc-wallet.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  BEEF_V1, BEEF_V2, Beef, HTTPWalletJSON, MasterCertificate, P2PKH, PrivateKey, ProtoWallet, PushDrop, Transaction,
  UnlockingScript, Utils
} from '@bsv/sdk'
import { startServe, stop, testVars } from './serve.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = process.env.MPC_WALLET_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'mpc-wallet')
const dir = mkdtempSync(join(tmpdir(), 'mpc-discover-'))
const TOKEN = randomBytes(32).toString('hex')
// The toolbox's identityUtils.js (out/src/utility/ of an installed @bsv/wallet-toolbox), when
// TOOLBOX_IDENTITY_UTILS names it; unset, the comparisons are skipped. Nothing outside the
// repository is read unless asked.
const TOOLBOX = process.env.TOOLBOX_IDENTITY_UTILS

const newParty = () => {
  const key = PrivateKey.fromRandom()
  return { wallet: new ProtoWallet(key), key: key.toPublicKey().toString(), hash: key.toPublicKey().toHash() }
}
const certifierA = newParty() // trusted, 3
const certifierB = newParty() // trusted, 1
const stranger = newParty() // not trusted
const [alice, bob, carol, dave, erin] = [newParty(), newParty(), newParty(), newParty(), newParty()]
const TYPE = Utils.toBase64(Array.from(randomBytes(32)))
const OUTPOINT = `${'cd'.repeat(32)}.0`
const CERTIFIERS = [certifierA.key, certifierB.key].sort((a, b) => a.localeCompare(b))
const TRUST_SETTINGS = {
  trustLevel: 2,
  trustedCertifiers: [
    { name: 'Trusted A', identityKey: certifierA.key, trust: 3 },
    { name: 'Trusted B', identityKey: certifierB.key, trust: 1 }
  ]
}

const walletEnv = overlayUrl => ({
  MPC_WALLET_ID: 'discover',
  MPC_SHARE_SECRET: 'discover interop secret',
  MPC_STORAGE_PATH: join(dir, 'agent.db'),
  MPC_ALLOWED_ORIGINS: 'http://localhost',
  MPC_API_TOKEN: TOKEN,
  MPC_LOOKUP_URL: overlayUrl,
  MPC_TRUSTED_CERTIFIERS: `${certifierA.key}:3:Trusted A, ${certifierB.key}:1:Trusted B`,
  MPC_TRUST_LEVEL: '2'
})

const connect = url => new HTTPWalletJSON('localhost', url, (u, init = {}) =>
  fetch(u, { ...init, headers: { ...init.headers, Authorization: `Bearer ${TOKEN}` } }))

// The stand-in overlay: records each request and answers what `answer` gives for its body.
const overlay = { requests: [], answer: () => ({ type: 'output-list', outputs: [] }) }
let overlayServer, overlayUrl, serve, wallet

function startOverlay () {
  return new Promise(resolve => {
    overlayServer = createServer((req, res) => {
      let body = ''
      req.on('data', d => { body += d })
      req.on('end', () => {
        const parsed = JSON.parse(body)
        overlay.requests.push({ method: req.method, url: req.url, contentType: req.headers['content-type'], body: parsed })
        const answer = overlay.answer(parsed)
        if (typeof answer === 'string') {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(answer)
          return
        }
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(answer))
      })
    })
    overlayServer.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${overlayServer.address().port}`))
  })
}

before(async () => {
  overlayUrl = await startOverlay()
  serve = await startServe(bin, walletEnv(overlayUrl))
  wallet = connect(serve.url)
})

after(async () => {
  if (serve) await stop(serve.child)
  if (overlayServer?.listening) {
    overlayServer.closeAllConnections()
    overlayServer.close()
  }
  rmSync(dir, { recursive: true, force: true })
})

/**
 * An identity token: `certifier` certifies `subject` with `fields`, the subject reveals `reveal`
 * to "anyone", and the token is a PushDrop output at `outputIndex` of a transaction in BEEF
 * (`format`: 'v2', 'v1' or 'atomic'). `alter` may change the certificate's JSON before it is
 * locked (a tampered token).
 */
async function token (certifier, subject, fields, reveal, { alter = c => c, format = 'v2', outputIndex = 0 } = {}) {
  const cert = await MasterCertificate.issueCertificateForSubject(certifier.wallet, subject.key, fields, TYPE, async () => OUTPOINT)
  const keyring = await MasterCertificate.createKeyringForVerifier(
    subject.wallet, certifier.key, 'anyone', cert.fields, reveal, cert.masterKeyring, cert.serialNumber)
  const json = alter({
    type: cert.type,
    serialNumber: cert.serialNumber,
    subject: cert.subject,
    certifier: cert.certifier,
    revocationOutpoint: cert.revocationOutpoint,
    fields: cert.fields,
    signature: cert.signature,
    keyring
  })
  const lockingScript = await new PushDrop(subject.wallet).lock(
    [Utils.toArray(JSON.stringify(json), 'utf8')], [1, 'identity'], '1', 'anyone', true, true)
  const outputs = [{ lockingScript, satoshis: 1 }]
  if (outputIndex === 1) outputs.unshift({ lockingScript: new P2PKH().lock(subject.hash), satoshis: 5 })
  const tx = new Transaction(1, [{
    sourceTXID: randomBytes(32).toString('hex'), sourceOutputIndex: 0, unlockingScript: new UnlockingScript(), sequence: 0xffffffff
  }], outputs, 0)
  const beef = new Beef(format === 'v1' ? BEEF_V1 : BEEF_V2)
  beef.mergeRawTx(tx.toBinary())
  const bytes = format === 'atomic' ? beef.toBinaryAtomic(tx.id('hex')) : beef.toBinary()
  return { beef: Array.from(bytes), outputIndex }
}

// A byte of the signature's S flipped: still DER, no longer the certifier's signature.
const badSignature = c => {
  const sig = Utils.toArray(c.signature, 'hex')
  sig[sig.length - 5] ^= 1
  return { ...c, signature: Utils.toHex(sig) }
}
// A byte of the revealed key's ciphertext flipped: the keyring no longer opens the field.
const badKeyring = c => {
  const name = Object.keys(c.keyring)[0]
  const bytes = Utils.toArray(c.keyring[name], 'base64')
  bytes[40] ^= 1
  return { ...c, keyring: { ...c.keyring, [name]: Utils.toBase64(bytes) } }
}

/** With TOOLBOX_IDENTITY_UTILS set: the toolbox's reading of the same overlay answer must be `got`. */
async function sameAsToolbox (t, answer, got) {
  if (!TOOLBOX || !existsSync(TOOLBOX)) {
    t.diagnostic('TOOLBOX_IDENTITY_UTILS does not name the toolbox: not compared with it')
    return
  }
  const { parseResults, transformVerifiableCertificatesWithTrust } = createRequire(import.meta.url)(TOOLBOX)
  const quiet = console.error
  console.error = () => {} // parseResults logs every token it drops
  let expected
  try {
    expected = transformVerifiableCertificatesWithTrust(TRUST_SETTINGS, await parseResults(answer))
  } finally {
    console.error = quiet
  }
  assert.deepEqual(got, JSON.parse(JSON.stringify(expected)))
  t.diagnostic('the same as the wallet toolbox gives')
}

let aliceByA, aliceByB
const ALICE = { name: 'Alice', email: 'alice@example.com', age: '42' }

test('by identity key: the toolbox query; trusted, verified certificates only, with certifierInfo', async t => {
  aliceByA = await token(certifierA, alice, ALICE, ['name', 'age'], { outputIndex: 1 })
  const answer = {
    type: 'output-list',
    outputs: [
      await token(stranger, alice, ALICE, ['name']), // untrusted certifier
      aliceByA,
      await token(certifierA, alice, ALICE, ['name'], { alter: badSignature, format: 'v1' }),
      await token(certifierA, alice, ALICE, ['name'], { alter: badKeyring }),
      { beef: [1, 2, 3], outputIndex: 0 }, // not a BEEF
      { beef: aliceByA.beef, outputIndex: 0 } // not a PushDrop
    ]
  }
  overlay.answer = () => answer
  overlay.requests = []
  const got = await wallet.discoverByIdentityKey({ identityKey: alice.key })
  assert.equal(overlay.requests.length, 1)
  const [req] = overlay.requests
  assert.equal(req.method, 'POST')
  assert.equal(req.url, '/lookup')
  assert.equal(req.contentType, 'application/json')
  assert.deepEqual(req.body, { service: 'ls_identity', query: { identityKey: alice.key, certifiers: CERTIFIERS } })

  assert.equal(got.totalCertificates, 1)
  const [c] = got.certificates
  const sent = JSON.parse(Utils.toUTF8(PushDrop.decode(Transaction.fromBEEF(aliceByA.beef).outputs[1].lockingScript).fields[0]))
  assert.deepEqual(c, {
    type: TYPE,
    serialNumber: sent.serialNumber,
    subject: alice.key,
    certifier: certifierA.key,
    revocationOutpoint: OUTPOINT,
    fields: sent.fields,
    signature: sent.signature,
    keyring: sent.keyring,
    decryptedFields: { name: 'Alice', age: '42' },
    publiclyRevealedKeyring: sent.keyring,
    certifierInfo: { name: 'Trusted A', iconUrl: '', trust: 3 }
  })
  await sameAsToolbox(t, answer, got)
})

test('the same query within two minutes is answered from the cache', async () => {
  overlay.requests = []
  const again = await wallet.discoverByIdentityKey({ identityKey: alice.key, limit: 5 })
  assert.equal(overlay.requests.length, 0)
  assert.equal(again.totalCertificates, 1)
})

test('trust level not reached: dropped; reached by two certificates of a weak certifier', async t => {
  const carols = {
    type: 'output-list',
    outputs: [
      await token(certifierB, carol, { name: 'Carol' }, ['name']), // 1 < 2
      await token(stranger, carol, { name: 'Carol' }, ['name'], { format: 'atomic' }) // not trusted: adds nothing
    ]
  }
  const daves = {
    type: 'output-list',
    outputs: [
      await token(certifierB, dave, { name: 'Dave' }, ['name'], { format: 'atomic' }),
      await token(certifierB, dave, { email: 'dave@example.com' }, ['email']) // 1 + 1 = 2
    ]
  }
  overlay.answer = body => body.query.identityKey === carol.key ? carols : daves
  const carolFound = await wallet.discoverByIdentityKey({ identityKey: carol.key })
  assert.deepEqual(carolFound, { totalCertificates: 0, certificates: [] })
  await sameAsToolbox(t, carols, carolFound)
  const daveFound = await wallet.discoverByIdentityKey({ identityKey: dave.key })
  assert.equal(daveFound.totalCertificates, 2)
  assert.deepEqual(daveFound.certificates.map(c => c.decryptedFields), [{ name: 'Dave' }, { email: 'dave@example.com' }])
  assert.deepEqual(daveFound.certificates[0].certifierInfo, { name: 'Trusted B', iconUrl: '', trust: 1 })
  await sameAsToolbox(t, daves, daveFound)
})

test('by identity key: certificates about another subject are not passed off as the one asked for', async () => {
  // An overlay that answers Alice's genuine certificate to a question about Erin. (The toolbox
  // would return it; the wallet keeps only certificates whose subject is the key asked about.)
  overlay.answer = () => ({ type: 'output-list', outputs: [aliceByA] })
  const found = await wallet.discoverByIdentityKey({ identityKey: erin.key })
  assert.deepEqual(found, { totalCertificates: 0, certificates: [] })
})

test('by attributes: the toolbox query; ordered by the certifiers\' trust', async t => {
  aliceByB = await token(certifierB, alice, { name: 'Alice', phone: '555' }, ['name', 'phone'], { format: 'v1' })
  const answer = { type: 'output-list', outputs: [aliceByB, aliceByA, await token(certifierA, bob, { name: 'Bob' }, ['name'])] }
  overlay.answer = () => answer
  overlay.requests = []
  const got = await wallet.discoverByAttributes({ attributes: { name: 'Alice' } })
  assert.deepEqual(overlay.requests.map(r => r.body), [{ service: 'ls_identity', query: { attributes: { name: 'Alice' }, certifiers: CERTIFIERS } }])
  // Alice: B (1) + A (3); Bob: A (3). Most trusted certifier first, ties in the overlay's order.
  assert.equal(got.totalCertificates, 3)
  assert.deepEqual(got.certificates.map(c => [c.subject, c.certifierInfo.trust]),
    [[alice.key, 3], [bob.key, 3], [alice.key, 1]])
  assert.deepEqual(got.certificates[2].decryptedFields, { name: 'Alice', phone: '555' })
  await sameAsToolbox(t, answer, got)
})

test('arguments are validated as @bsv/sdk validates them', async () => {
  const refused = async (call, parameter) => {
    await assert.rejects(call, e => {
      assert.equal(e.code, 6, e.message)
      assert.equal(e.parameter, parameter, e.message)
      return true
    })
  }
  await refused(wallet.discoverByIdentityKey({ identityKey: 'zz' }), 'identityKey')
  await refused(wallet.discoverByIdentityKey({ identityKey: alice.key, limit: 0 }), 'limit')
  await refused(wallet.discoverByIdentityKey({ identityKey: alice.key, offset: -1 }), 'offset')
  await refused(wallet.discoverByAttributes({ attributes: { ['n'.repeat(51)]: 'x' } }), 'attributes')
})

test('an overlay that answers garbage, then one that is down, is a clear error', async () => {
  overlay.answer = () => '<html>not an overlay</html>'
  await assert.rejects(wallet.discoverByIdentityKey({ identityKey: bob.key }), e => {
    assert.match(e.message, /overlay at http:\/\/127\.0\.0\.1:\d+ did not answer a lookup answer/)
    assert.match(e.message, /MPC_LOOKUP_URL/)
    return true
  })
  overlayServer.closeAllConnections()
  await new Promise(resolve => overlayServer.close(resolve))
  await assert.rejects(wallet.discoverByIdentityKey({ identityKey: bob.key }), e => {
    assert.ok(e.message.includes(`overlay at ${overlayUrl} could not be reached`), e.message)
    assert.match(e.message, /check MPC_LOOKUP_URL/)
    return true
  })
})

test('invalid MPC_TRUSTED_CERTIFIERS stops serve at start, naming it', async () => {
  await stop(serve.child)
  serve = undefined
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0'], {
    env: { PATH: process.env.PATH, ...testVars(), ...walletEnv(overlayUrl), MPC_TRUSTED_CERTIFIERS: `${certifierA.key}:11:Too trusted` },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', d => { output += d })
  child.stderr.on('data', d => { output += d })
  const code = await new Promise(resolve => child.on('exit', resolve))
  assert.notEqual(code, 0, output)
  assert.doesNotMatch(output, /^listening:/m)
  assert.match(output, /MPC_TRUSTED_CERTIFIERS is invalid: entry 1: the trust "11" must be a whole number from 1 to 10/)
})
