// `dmd serve` shuts down on time whatever the clients do (a body that never arrives, idle keep-alive
// connections, a reader that does not read), times out slow requests with 408, checks its options with
// the CLI's schema, and warns when it listens beyond this machine. Raw sockets play the clients.
import test from 'ava';
import path from 'node:path';
import net from 'node:net';
import { EDMNetwork, saveGenerator } from '../../src/index.js';
import { startServer, ServeConfigError } from '../../src/serve/server.js';
import { tempDir } from '../helpers/tmp.js';
import { TINY_TEACHER } from '../helpers/teacher.js';

const dir = tempDir();
const generator = path.join(dir, 'generator.safetensors');
{
  const n = EDMNetwork.create(TINY_TEACHER, { seed: 0 });
  saveGenerator(n, generator, 80);
  n.dispose();
}

function connect(url: string): Promise<net.Socket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname, () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything the server sends until it closes the connection (or the wait ends). */
function answer(s: net.Socket, ms: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    const done = (closed: boolean) => resolve({ text, closed });
    s.once('close', () => done(true));
    setTimeout(() => done(false), ms).unref();
  });
}

test('options are checked with the CLI schema and named; a busy port and a non-loopback host are said', async (t) => {
  await t.throwsAsync(startServer({ generator, maxCount: Number.NaN }), { instanceOf: ServeConfigError, message: /maxCount: .*number/ });
  await t.throwsAsync(startServer({ generator, maxBatch: -3 }), { instanceOf: ServeConfigError, message: /maxBatch/ });
  await t.throwsAsync(startServer({ generator, requestTimeoutMs: 5 }), { instanceOf: ServeConfigError, message: /requestTimeoutMs/ });
  await t.throwsAsync(startServer({ generator, maxCoutn: 3 } as never), { instanceOf: ServeConfigError, message: /unknown field\(s\) 'maxCoutn'/ });
  const a = await startServer({ generator, port: 0, device: 'cpu' }, () => {});
  const port = Number(new URL(a.url).port);
  await t.throwsAsync(startServer({ generator, port, device: 'cpu' }, () => {}), { instanceOf: ServeConfigError, message: new RegExp(`--port ${port} on 127\\.0\\.0\\.1 is in use by another program`) });
  await a.close();
  const lines: string[] = [];
  const b = await startServer({ generator, port: 0, host: '0.0.0.0', device: 'cpu' }, (s) => lines.push(s));
  t.true(lines.some((l) => /warning: --host 0\.0\.0\.0 .*no authentication/.test(l)), lines.join('\n'));
  await b.close();
});

test('a request whose body never arrives gets 408 after the request timeout', async (t) => {
  const s = await startServer({ generator, port: 0, device: 'cpu', requestTimeoutMs: 1000 }, () => {});
  try {
    const c = await connect(s.url);
    c.write('POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"cou');
    const r = await answer(c, 6000);
    t.regex(r.text, /^HTTP\/1\.1 408/);
    t.true(r.closed);
  } finally {
    await s.close();
  }
});

test('SIGTERM-style close ends within seconds with an idle keep-alive client, a stalled body and a reader that never reads', async (t) => {
  const s = await startServer({ generator, port: 0, device: 'cpu', requestTimeoutMs: 60_000, shutdownMs: 1000, maxCount: 64 }, () => {});
  // an idle keep-alive connection after one answered request
  const idle = await connect(s.url);
  idle.write('GET /api/info HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
  await new Promise((r) => idle.once('data', r));
  // a body that never arrives
  const stalled = await connect(s.url);
  stalled.write('POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{');
  // a client that asks for a large answer and never reads it
  const lazy = await connect(s.url);
  lazy.pause();
  const body = '{"count": 64, "format": "json"}';
  lazy.write(`POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  await new Promise((r) => setTimeout(r, 1500));
  const open = new Set(['idle', 'stalled', 'lazy']);
  const closes = ([['idle', idle], ['stalled', stalled], ['lazy', lazy]] as const).map(([name, c]) => new Promise<void>((r) => c.once('close', () => { open.delete(name); r(); })));
  const t0 = performance.now();
  await s.close();
  const ms = performance.now() - t0;
  t.true(ms < 5000, `close took ${ms.toFixed(0)} ms`);
  // the lazy client reads now: what the server managed to send, then the end (a paused socket reports no close)
  lazy.resume();
  await Promise.race([Promise.all(closes), new Promise((_, rej) => setTimeout(() => rej(new Error(`connections stayed open: ${[...open].join(', ')}`)), 3000))]);
  t.pass();
});
