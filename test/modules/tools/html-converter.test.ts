import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ConversionFailed, createHtmlConverter } from '../../../src/modules/tools/builtin/html-converter.ts';
import { createWebPages } from '../../../src/modules/tools/builtin/web-pages.ts';
import { ToolError } from '../../../src/modules/tools/index.ts';

/** About a second of the converter's time, on a machine of today. */
const BIG = `<html><body>${Array.from({ length: 20_000 }, (_, i) => `<p>Paragraph ${i}, <a href="/p/${i}">more</a>.</p>`).join('\n')}</body></html>`;
const SMALL = '<html><head><title>Small &amp; quick</title></head><body><h1>Otters</h1><p>Hold <a href="/hands">hands</a>.</p></body></html>';
const never = new AbortController().signal;

describe('HTML conversion threads', () => {
  test('the title and text of a page, its links absolute', async () => {
    const converter = createHtmlConverter({ threads: 1, timeoutMs: 60_000 });
    try {
      assert.deepEqual(await converter.convert(SMALL, 'https://otters.example/a/', never), { title: 'Small & quick', text: 'OTTERS\n\nHold hands [https://otters.example/hands].' });
      assert.deepEqual(await converter.convert('<p>no title</p>', 'https://otters.example/', never), { text: 'no title' });
    } finally {
      await converter.close();
    }
  });

  test('at most `threads` pages at once: with one, a small page waits for the big one before it; with two, it does not', async () => {
    for (const [threads, expected] of [
      [1, ['big', 'small']],
      [2, ['small', 'big']],
    ] as const) {
      const converter = createHtmlConverter({ threads, timeoutMs: 120_000 });
      try {
        const order: string[] = [];
        const big = converter.convert(BIG, 'https://otters.example/', never).then(() => order.push('big'));
        const small = converter.convert(SMALL, 'https://otters.example/', never).then(() => order.push('small'));
        await Promise.all([big, small]);
        assert.deepEqual(order, expected, `${threads} thread(s)`);
      } finally {
        await converter.close();
      }
    }
  });

  test('a page past its time is stopped (its thread ended) and the next page is converted on a new one', async () => {
    const converter = createHtmlConverter({ threads: 1, timeoutMs: 100 });
    try {
      await assert.rejects(converter.convert(BIG, 'https://otters.example/', never), (err: unknown) => err instanceof ConversionFailed && err.reason === 'timeout');
      assert.equal((await converter.convert('<p>next</p>', 'https://otters.example/', never)).text, 'next');
    } finally {
      await converter.close();
    }
  });

  test('a page whose fetch gives up, waiting or while converted, fails with its reason; the others go on', async () => {
    const converter = createHtmlConverter({ threads: 1, timeoutMs: 120_000 });
    try {
      const running = new AbortController();
      const waiting = new AbortController();
      const first = converter.convert(BIG, 'https://otters.example/', running.signal);
      const second = converter.convert(BIG, 'https://otters.example/', waiting.signal);
      const third = converter.convert(SMALL, 'https://otters.example/', never);
      waiting.abort(new Error('gave up waiting'));
      await assert.rejects(second, /gave up waiting/);
      running.abort(new Error('gave up converting'));
      await assert.rejects(first, /gave up converting/);
      assert.equal((await third).title, 'Small & quick');
    } finally {
      await converter.close();
    }
  });
});

describe('fetch_url: a page that takes too long to convert', () => {
  let server: http.Server;
  let base: string;
  before(async () => {
    server = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(req.url === '/big' ? BIG : SMALL));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('is a convert_timeout error naming the limit; the next page is read', async () => {
    const pages = createWebPages({ maxBytes: 2_000_000, timeoutMs: 120_000, convertTimeoutMs: 100, maxConversions: 1, allowPrivate: true, maxTextChars: 20_000 });
    try {
      await assert.rejects(pages.read(`${base}/big`, never), (err: unknown) => err instanceof ToolError && err.code === 'convert_timeout' && /100 ms/.test(err.message));
      assert.equal((await pages.read(`${base}/small`, never)).title, 'Small & quick');
    } finally {
      await pages.close();
    }
  });
});
