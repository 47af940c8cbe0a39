// `dmd serve`: an HTTP demo of a one-step generator (node:http, 127.0.0.1 by default), EDM
// (classes) or Stable Diffusion (prompts). The model is loaded once, in its own thread
// (model-thread.ts), so the event loop keeps answering while a batch is computed; concurrent
// requests are merged into batches (batcher.ts). Routes:
//   GET  /               the demo page
//   GET  /api/info       the model (classes or prompts, resolution, NFE, limits)
//   GET  /api/health     live tensors and request/batch counts
//   POST /api/generate   {classes?: number | number[]  (EDM) | prompt: string | string[]  (SD),
//                         seed?: number, count?: number, format?: "png" | "json"}
//                        -> a PNG grid (default) or JSON with base64 PNG images
// Every bad request is a 400 with a one-line reason; the server never crashes on input.
import http from 'node:http';
import { z } from 'zod';
import { resolveDevice, liveTensors, type Device } from '../tensor/index.js';
import { layoutGrid, slicePixels } from '../data/grid.js';
import { encodePNG } from '../data/png.js';
import { formatZodError } from '../util/zod.js';
import { fields } from '../util/fields.js';
import { Batcher, ShuttingDown } from './batcher.js';
import { ModelThread } from './model-thread.js';
import type { ModelInfo } from './engine.js';
import { pageHTML, type PageInfo } from './page.js';

export const ServeConfigSchema = z.object({
  generator: z.string().min(1).optional().describe('one-step generator file (from dmd-train)'),
  teacher: z.string().min(1).optional().describe('serve a teacher with its sampler instead (EDM: Heun, SD: DDIM; slow; default without --generator: the bundled teacher)'),
  steps: z.number().int().positive().optional().describe('sampler steps for --teacher (default: EDM Heun 18, SD DDIM 25)'),
  guidance: z.number().positive().optional().describe('classifier-free guidance weight for --teacher (default: EDM 1, SD 7.5)'),
  host: z.string().min(1).default('127.0.0.1').describe('address to listen on (0.0.0.0 exposes the demo to the network)'),
  port: z.number().int().min(0).max(65535).default(8080).describe('port (0 = any free port)'),
  maxCount: z.number().int().positive().max(4096).default(64).describe('most images one request may ask for'),
  maxBatch: z.number().int().positive().max(8192).default(256).describe('most images merged into one network call'),
  batchWindowMs: z.number().min(0).max(1000).default(2).describe('how long the first request of a batch waits for others to join (ms)'),
  requestTimeoutMs: z.number().int().min(100).max(600_000).default(15_000).describe('ms a client has to send a whole request and to read the answer; slower ones get 408 or are disconnected'),
  shutdownMs: z.number().int().min(0).max(60_000).default(3000).describe('on Ctrl-C / SIGTERM: ms in-flight requests have to finish before every connection is closed'),
  device: fields.device(),
});
export type ServeConfig = z.infer<typeof ServeConfigSchema>;

const MAX_PROMPT = 2000;
const RequestSchema = z
  .object({
    classes: z.union([z.number().int(), z.array(z.number().int()).max(8192)]).optional(),
    prompt: z.union([z.string().max(MAX_PROMPT), z.array(z.string().max(MAX_PROMPT)).max(4096)]).optional(),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
    count: z.number().int().min(1).default(1),
    format: z.enum(['png', 'json']).default('png'),
  })
  .strict();

class BadRequest extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const MAX_BODY = 64 * 1024;

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      // past the limit the rest is read and dropped, so that the client receives the 413
      if (size > MAX_BODY) reject(new BadRequest(413, `request body larger than ${MAX_BODY / 1024} KiB`));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export interface DemoServer {
  url: string;
  server: http.Server;
  batcher: Batcher;
  close(): Promise<void>;
}

/** Parses and checks a generate request against the model; throws BadRequest with the reason. */
function parseRequest(text: string, info: ModelInfo, maxCount: number) {
  let raw: unknown;
  try {
    raw = text.trim() ? JSON.parse(text) : {};
  } catch (e) {
    throw new BadRequest(400, `the body is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const example = info.textToImage ? '{"prompt": "a photo of a cat", "seed": 0, "count": 4}' : '{"classes": 3, "seed": 0, "count": 8}';
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new BadRequest(400, `the body must be a JSON object like ${example}`);
  const r = RequestSchema.safeParse(raw);
  if (!r.success) throw new BadRequest(400, formatZodError(r.error));
  const q = r.data;
  if (q.count > maxCount) throw new BadRequest(400, `count: ${q.count} is more than this server's --max-count ${maxCount}`);
  const perImage = <T>(v: T | T[] | undefined, what: string, plural: string): T[] | undefined => {
    if (Array.isArray(v) && v.length !== q.count) throw new BadRequest(400, `${what}: ${v.length} ${plural} for count ${q.count}; give one per image, or a single one`);
    return v === undefined ? undefined : Array.isArray(v) ? v : new Array<T>(q.count).fill(v);
  };
  if (info.textToImage) {
    if (q.classes !== undefined) throw new BadRequest(400, 'classes: this is a text-to-image model; give a prompt instead, like ' + example);
    const prompts = perImage(q.prompt, 'prompt', 'prompts');
    if (!prompts) throw new BadRequest(400, `prompt: this is a text-to-image model; give a prompt, like ${example}`);
    return { ...q, classes: [] as number[], prompts };
  }
  if (q.prompt !== undefined) throw new BadRequest(400, `prompt: this model is ${info.labelDim ? 'class-conditional; give classes' : 'unconditional; leave prompt out'} (prompts need a Stable Diffusion model)`);
  let classes: number[] = [];
  const labelDim = info.labelDim;
  if (labelDim) {
    classes = perImage(q.classes, 'classes', 'classes') ?? Array.from({ length: q.count }, (_, i) => i % labelDim);
    const bad = classes.find((c) => c < 0 || c >= labelDim);
    if (bad !== undefined) throw new BadRequest(400, `classes: ${bad} is not a class of this model (0..${labelDim - 1})`);
  } else if (q.classes !== undefined && (!Array.isArray(q.classes) || q.classes.length)) {
    throw new BadRequest(400, 'classes: this model is unconditional; leave classes out');
  }
  return { ...q, classes, prompts: undefined };
}

export class ServeConfigError extends Error {
  readonly code = 'ERR_SERVE_CONFIG';
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || /^127\./.test(host) || host === '::1' || host === '[::1]';
}

/** Starts the demo server; the options are checked with the same schema as `dmd serve`'s flags (a bad one is named). */
export async function startServer(input: Partial<ServeConfig> | ServeConfig, log: (s: string) => void = console.log): Promise<DemoServer> {
  const parsed = ServeConfigSchema.strict().safeParse(input);
  if (!parsed.success) throw new ServeConfigError(`invalid server options: ${formatZodError(parsed.error)}`);
  const cfg = parsed.data;
  if (!isLoopback(cfg.host))
    log(`warning: --host ${cfg.host} makes the demo reachable from other machines; it has no authentication (anyone who can connect can use this machine's ${cfg.device === 'cpu' ? 'CPU' : 'GPU'})`);
  const device: Device = resolveDevice(cfg.device);
  const model = await ModelThread.start({ generator: cfg.generator, teacher: cfg.teacher, steps: cfg.steps, guidance: cfg.guidance, device });
  const info: PageInfo = { ...model.info, maxCount: cfg.maxCount };
  const batcher = new Batcher((items) => model.run(items), { maxBatch: Math.max(cfg.maxBatch, cfg.maxCount), windowMs: cfg.batchWindowMs });
  const page = pageHTML(info);

  const send = (res: http.ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
    res.end(body);
  };
  const json = (res: http.ServerResponse, status: number, v: unknown) => send(res, status, 'application/json', JSON.stringify(v));

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/' && req.method === 'GET') return send(res, 200, 'text/html; charset=utf-8', page);
    if (url.pathname === '/favicon.ico') return send(res, 204, 'image/x-icon', '');
    if (url.pathname === '/api/info' && req.method === 'GET') return json(res, 200, info);
    if (url.pathname === '/api/health' && req.method === 'GET') return json(res, 200, { status: 'ok', liveTensors: liveTensors(), ...batcher.stats });
    if (url.pathname === '/api/generate') {
      if (req.method !== 'POST') return json(res, 405, { error: 'use POST with a JSON body' });
      const q = parseRequest(await readBody(req), model.info, cfg.maxCount);
      const t0 = performance.now();
      const r = await batcher.generate({ classes: q.classes, prompts: q.prompts, count: q.count, seed: q.seed });
      const latency = performance.now() - t0;
      const meta = { 'x-compute-ms': r.computeMs.toFixed(2), 'x-batch-images': String(r.batchImages), 'x-latency-ms': latency.toFixed(2) };
      const labelDim = model.info.labelDim;
      if (q.format === 'png') return send(res, 200, 'image/png', encodePNG(layoutGrid(r.images, labelDim && q.count >= labelDim ? labelDim : undefined)), meta);
      const images: string[] = [];
      for (let i = 0; i < q.count; i++) images.push(`data:image/png;base64,${encodePNG(layoutGrid(slicePixels(r.images, i, 1), 1)).toString('base64')}`);
      return json(res, 200, { images, classes: q.classes, ...(q.prompts ? { prompts: q.prompts } : {}), seed: q.seed, count: q.count, latency_ms: latency, compute_ms: r.computeMs, batch_images: r.batchImages, queued_ms: r.queuedMs });
    }
    return json(res, 404, { error: `no route ${req.method} ${url.pathname} (GET /, GET /api/info, GET /api/health, POST /api/generate)` });
  };

  // Node checks the request timeout on a timer (every 30 s by default): check often enough to honour it
  const server = http.createServer({
    requestTimeout: cfg.requestTimeoutMs, headersTimeout: Math.min(cfg.requestTimeoutMs, 10_000), keepAliveTimeout: 5_000,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, cfg.requestTimeoutMs / 4)),
  }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof BadRequest ? e.status : e instanceof ShuttingDown ? 503 : 500;
      if (status === 500) log(`error serving ${req.method} ${req.url}: ${e instanceof Error ? e.message : String(e)}`);
      if (!res.headersSent) json(res, status, { error: e instanceof Error ? e.message : String(e) });
      else res.destroy();
    });
  });
  // a client that stops reading (or sending) for twice the request timeout is disconnected (after the
  // request timeout's 408, which comes first for a request that does not arrive)
  server.setTimeout(2 * cfg.requestTimeoutMs + 1000);
  // every socket, whatever state Node's own bookkeeping has it in, is closed at shutdown
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(e.code === 'EADDRINUSE' ? new ServeConfigError(`--port ${cfg.port} on ${cfg.host} is in use by another program; choose another port (0 = any free one)`)
          : e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' ? new ServeConfigError(`--host ${cfg.host} is not an address of this machine`) : e));
      server.listen(cfg.port, cfg.host, () => resolve());
    });
  } catch (e) {
    await model.close();
    throw e;
  }
  const addr = server.address() as { address: string; port: number };
  const url = `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}/`;
  log(`serving ${info.model} (${info.textToImage ? 'text-to-image, ' : ''}${info.oneStep ? 'one step' : `teacher, NFE ${info.nfe}`}, ${device}) at ${url}`);
  let closing: Promise<void> | null = null;
  // stop accepting, refuse what is queued, give the batch being computed shutdownMs, then close every
  // connection (idle keep-alive ones at once, slow clients after the grace period) and free the model
  const close = () =>
    (closing ??= (async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const destroyAll = () => {
        server.closeAllConnections();
        for (const sock of sockets) sock.destroy();
      };
      const deadline = setTimeout(destroyAll, cfg.shutdownMs);
      await batcher.close();
      // in-flight answers get what is left of the grace period to reach their clients
      await Promise.race([closed, new Promise((r) => setTimeout(r, cfg.shutdownMs))]);
      destroyAll();
      await closed;
      clearTimeout(deadline);
      await model.close();
    })());
  return { url, server, batcher, close };
}
