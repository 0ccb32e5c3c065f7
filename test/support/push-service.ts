import { createDecipheriv, createECDH, hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeProtectedHeader, importJWK, jwtVerify, type JWTPayload } from 'jose';

/** What a browser got: the decrypted payload, and what the push service was told with it. */
export interface PushMessage {
  plaintext: string;
  ttl: number;
  urgency: string | null;
  /** The VAPID JWT's claims and key (`k`), verified. */
  claims: JWTPayload;
  vapidKey: string;
}

export interface TestBrowser {
  /** What `PushSubscription.toJSON()` would give for it. */
  subscription: { endpoint: string; expirationTime: null; keys: { p256dh: string; auth: string } };
  /** Messages it decrypted, oldest first. */
  received: PushMessage[];
  /** Answers the next pushes to it get instead of a delivery, in order (a 429, a 500). */
  answers: { status: number; headers?: Record<string, string> }[];
  /** From now on the push service says it is gone (410), as after the user revoked permission. */
  gone: boolean;
  /** Pushes refused with a problem in the request (bad VAPID, bad encoding): `<status> <why>`. */
  refused: string[];
}

/**
 * A local push service that behaves like a browser vendor's (RFC 8030): `POST /push/<id>` takes a message
 * for one subscription, checks its VAPID authorization (RFC 8292: `vapid t=<ES256 JWT>, k=<public key>`,
 * the JWT verified against k, `aud` this origin, `exp` within 24 h, a `sub`), its TTL and its
 * `Content-Encoding: aes128gcm`, decrypts the payload with the browser's private key (RFC 8291 over
 * RFC 8188) the way the browser would, and answers 201 with a Location. 404 for an unknown subscription.
 */
export async function startPushService() {
  const browsers = new Map<string, TestBrowser & { ecdh: ReturnType<typeof createECDH>; auth: Buffer }>();
  let origin = '';

  const server = createServer(async (req, res) => {
    const id = /^\/push\/([\w-]+)$/.exec(req.url ?? '')?.[1];
    const browser = id ? browsers.get(id) : undefined;
    const body = await readBody(req);
    if (req.method !== 'POST' || !browser) return answer(res, 404, 'no such subscription');
    const fail = (status: number, why: string) => {
      browser.refused.push(`${status} ${why}`);
      answer(res, status, why);
    };
    const ttl = Number(req.headers.ttl);
    if (req.headers.ttl === undefined || !Number.isInteger(ttl) || ttl < 0) return fail(400, 'TTL header missing');
    if (req.headers['content-encoding'] !== 'aes128gcm') return fail(415, `unsupported Content-Encoding ${req.headers['content-encoding']}`);
    if (body.length > 4096) return fail(413, 'payload too large');
    let claims: JWTPayload;
    let vapidKey: string;
    try {
      ({ claims, vapidKey } = await verifyVapid(String(req.headers.authorization ?? ''), origin));
    } catch (err) {
      return fail(401, `VAPID: ${(err as Error).message}`);
    }
    if (browser.gone) return answer(res, 410, 'push subscription has unsubscribed or expired');
    const next = browser.answers.shift();
    if (next) {
      res.writeHead(next.status, { 'content-type': 'text/plain', ...next.headers }).end(`answered ${next.status}`);
      return;
    }
    let plaintext: string;
    try {
      plaintext = decryptAes128gcm(body, browser.ecdh, browser.auth).toString('utf8');
    } catch (err) {
      return fail(400, `cannot decrypt: ${(err as Error).message}`);
    }
    browser.received.push({ plaintext, ttl, urgency: (req.headers.urgency as string | undefined) ?? null, claims, vapidKey });
    res.writeHead(201, { location: `${origin}/message/${randomUUID()}`, ttl: String(ttl) }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    /** A new browser subscription: a fresh P-256 key pair and auth secret, as `pushManager.subscribe()` makes. */
    browser(): TestBrowser {
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      const auth = randomBytes(16);
      const id = randomBytes(24).toString('base64url');
      const browser = {
        ecdh,
        auth,
        subscription: { endpoint: `${origin}/push/${id}`, expirationTime: null, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } },
        received: [],
        answers: [],
        gone: false,
        refused: [],
      };
      browsers.set(id, browser);
      return browser;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function answer(res: ServerResponse, status: number, message: string) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ code: status, message }));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** RFC 8292: `vapid t=<JWT>, k=<uncompressed P-256 key>`; the JWT is ES256, signed by k, for this origin, for at most 24 h. */
async function verifyVapid(header: string, origin: string): Promise<{ claims: JWTPayload; vapidKey: string }> {
  const m = /^vapid\s+(.+)$/i.exec(header);
  if (!m) throw new Error('no "vapid" Authorization');
  const t = /(?:^|[\s,])t=([\w.-]+)/.exec(m[1]!)?.[1];
  const k = /(?:^|[\s,])k=([\w-]+)/.exec(m[1]!)?.[1];
  if (!t || !k) throw new Error('t= or k= missing');
  const point = Buffer.from(k, 'base64url');
  if (point.length !== 65 || point[0] !== 4) throw new Error('k is not an uncompressed P-256 key');
  if (decodeProtectedHeader(t).alg !== 'ES256') throw new Error('JWT is not ES256');
  const key = await importJWK({ kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') }, 'ES256');
  const { payload } = await jwtVerify(t, key, { algorithms: ['ES256'], audience: origin, requiredClaims: ['exp', 'sub'] });
  if (payload.exp! > Date.now() / 1000 + 24 * 3600 + 60) throw new Error('exp more than 24 h ahead');
  if (!/^(mailto:|https:)/.test(String(payload.sub))) throw new Error('sub is not a mailto: or https: URL');
  return { claims: payload, vapidKey: k };
}

/**
 * RFC 8188 aes128gcm, keyed the RFC 8291 way: the header is salt(16) | rs(4) | idlen(1) | keyid (the
 * sender's ephemeral public key); the key comes from ECDH with the browser's private key and its auth
 * secret; each record is AES-128-GCM with the nonce XOR its sequence number and ends in a delimiter
 * (1, or 2 on the last) followed by zero padding.
 */
export function decryptAes128gcm(body: Buffer, ecdh: ReturnType<typeof createECDH>, authSecret: Buffer): Buffer {
  if (body.length < 21) throw new Error('shorter than the header');
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20]!;
  const senderKey = body.subarray(21, 21 + idlen);
  if (idlen !== 65 || senderKey[0] !== 4) throw new Error('keyid is not an uncompressed P-256 key');
  if (rs < 18) throw new Error('record size too small');
  const ecdhSecret = ecdh.computeSecret(senderKey);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), ecdh.getPublicKey(), senderKey]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, authSecret, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const records = body.subarray(21 + idlen);
  const out: Buffer[] = [];
  for (let offset = 0, seq = 0; offset < records.length; offset += rs, seq++) {
    const record = records.subarray(offset, offset + rs);
    if (record.length < 17) throw new Error('record shorter than its tag');
    const iv = Buffer.from(nonce);
    iv.writeUInt32BE((iv.readUInt32BE(8) ^ seq) >>> 0, 8);
    const decipher = createDecipheriv('aes-128-gcm', cek, iv, { authTagLength: 16 });
    decipher.setAuthTag(record.subarray(record.length - 16));
    const plain = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
    let end = plain.length - 1;
    while (end >= 0 && plain[end] === 0) end--;
    const last = offset + rs >= records.length;
    if (end < 0 || plain[end] !== (last ? 2 : 1)) throw new Error('bad record delimiter');
    out.push(plain.subarray(0, end));
  }
  return Buffer.concat(out);
}
