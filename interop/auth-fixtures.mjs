// The bytes @bsv/sdk 2.1.0 produces for BRC-103/104 over HTTP, computed by the SDK itself:
// AuthFetch's request serialization, what SimplifiedFetchTransport sends over HTTP for a general
// message and the payload it builds from a server's response (its fetch is replaced by a
// function that records the request and answers a canned response), the nonce HMAC of
// createNonce, TextDecoder's UTF-8, JSON.stringify(JSON.parse(...)), localeCompare's header
// order, a server's handshake signature and a BRC-29 payment key. `wallet-auth`'s unit tests read
// the result from auth/tests/fixtures/sdk.json; interop/auth.test.mjs checks that file is what
// this script produces. Regenerate: node interop/auth-fixtures.mjs > auth/tests/fixtures/sdk.json
import { AuthFetch, P2PKH, PrivateKey, ProtoWallet, PublicKey, SimplifiedFetchTransport, Utils } from '@bsv/sdk'
import { fileURLToPath } from 'node:url'

const CLIENT_KEY = '11'.repeat(32)
const SERVER_KEY = '22'.repeat(32)
const b64 = bytes => Utils.toBase64(Array.from(bytes))
const fill = (n, f) => Array.from({ length: n }, (_, i) => f(i))

/** AuthFetch.serializeRequest, and what the transport then sends over HTTP. */
async function request ({ url, method, headers, body }) {
  const nonce = fill(32, i => (i * 7 + 3) & 0xff)
  const writer = await new AuthFetch(new ProtoWallet(PrivateKey.fromHex(CLIENT_KEY)))
    .serializeRequest(method, headers, body, new URL(url), nonce)
  const payload = writer.toArray()
  let sent
  const transport = new SimplifiedFetchTransport(new URL(url).origin, async (u, init) => {
    sent = { url: u, method: init.method, headers: init.headers, body: init.body == null ? null : b64(typeof init.body === 'string' ? Utils.toArray(init.body, 'utf8') : init.body) }
    return new Response(null, { status: 204, headers: { 'x-bsv-auth-version': '0.1', 'x-bsv-auth-identity-key': '02' + '00'.repeat(32), 'x-bsv-auth-signature': '00' } })
  })
  await transport.onData(async () => {})
  await transport.send({ version: '0.1', messageType: 'general', identityKey: 'IDENTITY', nonce: 'NONCE', yourNonce: 'YOUR_NONCE', payload, signature: [1, 2, 254] })
  return { url, method, headers: Object.entries(headers), body: body === undefined ? null : b64(Utils.toArray(body, 'utf8')), nonce: b64(nonce), payload: Utils.toHex(payload), http: sent }
}

/** What SimplifiedFetchTransport signs-over (the payload it verifies) for a server's response. */
async function response ({ status, headers, body }) {
  let message
  const transport = new SimplifiedFetchTransport('http://example.test', async () =>
    new Response(body == null ? null : new Uint8Array(body), { status, headers }))
  await transport.onData(async m => { message = m })
  await transport.send({ version: '0.1', messageType: 'general', identityKey: 'IDENTITY', nonce: 'NONCE', yourNonce: 'YOUR_NONCE', payload: [...fill(32, () => 9), 3, 71, 69, 84, 1, 47, 0xff, ...fill(8, () => 0xff), 0, 0xff, ...fill(8, () => 0xff)], signature: [1] })
  return { status, headers, body: body == null ? null : b64(body), payload: Utils.toHex(message.payload), messageType: message.messageType, nonce: message.nonce ?? null, yourNonce: message.yourNonce ?? null, signature: Utils.toHex(message.signature) }
}

/** A refusal AuthFetch.serializeRequest or the transport throws, by message. */
async function refusal (req) {
  try {
    await request(req)
  } catch (e) {
    return { ...req, headers: Object.entries(req.headers), body: req.body ?? null, error: e.message }
  }
  throw new Error(`expected a refusal for ${JSON.stringify(req)}`)
}

export async function fixtures () {
  const requestId = b64(fill(32, () => 9))
  const authHeaders = { 'x-bsv-auth-version': '0.1', 'x-bsv-auth-identity-key': '02' + 'ab'.repeat(32), 'x-bsv-auth-signature': 'abcd', 'x-bsv-auth-nonce': 'bm9uY2U=', 'x-bsv-auth-your-nonce': 'eW91cg==', 'x-bsv-auth-request-id': requestId }
  const requests = await Promise.all([
    { url: 'http://127.0.0.1:8080/', method: 'GET', headers: {}, body: undefined },
    { url: 'http://127.0.0.1:8080/a/b?x=1&y=%20z#frag', method: 'GET', headers: { 'X-BSV-Topic': 'news', Authorization: 'Bearer t' }, body: undefined },
    { url: 'https://example.test/api?', method: 'GET', headers: {}, body: undefined },
    { url: 'https://example.test/ünï cöde/ä?q=ö', method: 'GET', headers: {}, body: undefined },
    { url: 'http://127.0.0.1:8080/echo', method: 'POST', headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: '{"hello":"world","n":[1,2.5]}' },
    { url: 'http://127.0.0.1:8080/echo', method: 'POST', headers: { 'content-type': 'application/json' }, body: undefined },
    { url: 'http://127.0.0.1:8080/echo', method: 'PUT', headers: { 'content-type': 'text/plain' }, body: undefined },
    { url: 'http://127.0.0.1:8080/echo', method: 'DELETE', headers: {}, body: undefined },
    { url: 'http://127.0.0.1:8080/echo', method: 'POST', headers: { 'content-type': 'text/plain' }, body: '' },
    { url: 'http://127.0.0.1:8080/echo', method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'x-bsv-b': '2', 'x-bsv-a_b': '3', 'x-bsv-a-b': '4', 'x-bsv-ab': '5', 'x-bsv-a1': '6', 'x-bsv-a.b': '7' }, body: 'bytes ü' }
  ].map(request))
  const responses = await Promise.all([
    { status: 200, headers: { ...authHeaders, 'content-type': 'application/json', 'x-bsv-payment-satoshis-paid': '100', 'X-Custom': 'no' }, body: Utils.toArray('{"ok":true}', 'utf8') },
    { status: 204, headers: { ...authHeaders }, body: null },
    { status: 402, headers: [...Object.entries(authHeaders), ['x-bsv-z', '1'], ['x-bsv-a', 'first'], ['x-bsv-a', 'second'], ['authorization', 'Basic x'], ['x-bsv-a_b', 'é']], body: [0, 255, 128] },
    { status: 200, headers: { ...authHeaders, 'x-bsv-auth-message-type': 'certificateRequest', 'x-bsv-auth-requested-certificates': '{"certifiers":["02aa"],"types":{"dHlwZQ==":["name"]}}' }, body: Utils.toArray('x', 'utf8') },
    { status: 500, headers: { ...authHeaders, 'x-bsv-auth-request-id': 'AAEC' }, body: Utils.toArray('err', 'utf8') }
  ].map(response))
  const refusals = await Promise.all([
    { url: 'http://127.0.0.1:8080/', method: 'GET', headers: { 'x-bsv-auth-nonce': 'x' } },
    { url: 'http://127.0.0.1:8080/', method: 'GET', headers: { accept: 'text/html' } },
    { url: 'http://127.0.0.1:8080/', method: 'POST', headers: {}, body: 'no content type' }
  ].map(refusal))

  const utf8Cases = ['', '41', 'efbbbf41', 'efbbbfefbbbf', 'ff', 'c0af', 'e080', 'eda080', 'f4908080', 'f09f98', 'f09f9880', 'c3', 'e282ac', '80bf', 'f8888080', '41c3', 'fe', 'ed9fbf', 'ee8080', fill(16, i => (i * 37 + 11) & 0xff).map(b => b.toString(16).padStart(2, '0')).join('')]
  const utf8 = utf8Cases.map(hex => ({ bytes: hex, text: Utils.toUTF8(Utils.toArray(hex, 'hex')) }))

  const jsonCases = [
    '{"b":1,"a":2}', '{ "a" : [ 1 , 2 ] }', '{"2":"x","1":"y","b":0,"01":1,"4294967295":2,"4294967294":3}',
    '{"a":1,"b":2,"a":3}', '[1.0,1e21,1e-7,123e-20,-0,0.1,5e-324,1.7976931348623157e308,1e400,123456789012345678901234,0.000001,1.5e-6,100,2e1]',
    '"\\u00e9\\ud83d\\ude00\\ud800x\\u2028\\u0007\\/"', '{"s":"tab\\tnew\\nquote\\"back\\\\ctl\\u001f del\u007f"}', '[true,false,null,{},[]]',
    '{"__proto__":1,"constructor":2}', '\ufeff{"bom":1}', '[-1.25e+2,0e0,-0.0]'
  ]
  const json = jsonCases.map(input => ({ input, output: JSON.stringify(JSON.parse(input.replace(/^\ufeff/, ''))) }))

  const headerNames = ['x-bsv-a_b', 'x-bsv-a-b', 'x-bsv-ab', 'x-bsv-a.b', 'x-bsv-a1', 'x-bsv-a', 'authorization', 'content-type', 'x-bsv-a~b', 'x-bsv-a!b', "x-bsv-a'b", 'x-bsv-a*b', 'x-bsv-a+b', 'x-bsv-a|b', 'x-bsv-a^b', 'x-bsv-a`b', 'x-bsv-a$b', 'x-bsv-a%b', 'x-bsv-a&b', 'x-bsv-a#b', 'x-bsv-b', 'x-bsv-z9', 'x-bsv-za']
  const headerOrder = headerNames.slice().sort((a, b) => a.localeCompare(b))

  const client = new ProtoWallet(PrivateKey.fromHex(CLIENT_KEY))
  const server = new ProtoWallet(PrivateKey.fromHex(SERVER_KEY))
  const clientIdentity = (await client.getPublicKey({ identityKey: true })).publicKey
  const serverIdentity = (await server.getPublicKey({ identityKey: true })).publicKey
  // createNonce with its 16 random bytes fixed.
  const nonces = await Promise.all(['000102030405060708090a0b0c0d0e0f', 'efbbbf41ff8081c3e282acf09f988000', 'ffffffffffffffffffffffffffffffff'].map(async hex => {
    const firstHalf = Utils.toArray(hex, 'hex')
    const { hmac } = await client.createHmac({ protocolID: [2, 'server hmac'], keyID: Utils.toUTF8(firstHalf), data: firstHalf, counterparty: 'self' })
    return { firstHalf: hex, nonce: b64([...firstHalf, ...hmac]) }
  }))
  // A server's initialResponse signature, as Peer.processInitialRequest makes it.
  const clientNonce = nonces[0].nonce
  const serverNonce = nonces[2].nonce
  const { signature } = await server.createSignature({
    data: [...Utils.toArray(clientNonce, 'base64'), ...Utils.toArray(serverNonce, 'base64')],
    protocolID: [2, 'auth message signature'],
    keyID: `${clientNonce} ${serverNonce}`,
    counterparty: clientIdentity
  })
  // The key AuthFetch pays for a 402.
  const prefix = 'cHJlZml4'
  const suffix = nonces[1].nonce
  const { publicKey: paymentKey } = await client.getPublicKey({ protocolID: [2, '3241645161d8'], keyID: `${prefix} ${suffix}`, counterparty: serverIdentity })
  return {
    sdk: '2.1.0',
    clientKey: CLIENT_KEY,
    serverKey: SERVER_KEY,
    clientIdentity,
    serverIdentity,
    requests,
    responses,
    refusals,
    utf8,
    json,
    headerOrder,
    nonces,
    handshake: { clientNonce, serverNonce, signature: Utils.toHex(signature) },
    payment: { prefix, suffix, key: paymentKey, lockingScript: new P2PKH().lock(PublicKey.fromString(paymentKey).toAddress()).toHex() }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(JSON.stringify(await fixtures(), null, 1) + '\n')
}
