import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { serve } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Client } from '@temporalio/client';
import { Hono } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { projectBundle } from '../activities/code-bundle';
import { connectClient } from '../client/temporal';
import type { Config } from '../config/config';
import { IndexReader, indexBuilt, rebuildIndex } from '../lake/partition-index';
import { openLake, s3ClientFor, type Lake } from '../lake/store';
import { createApi } from './api';
import { checkBinding, guard, isLoopbackAddress } from './auth';
import { InputFingerprintCache } from './inputs';
import { runningMaterializations, TemporalAccess, TemporalLinks } from './temporal-runs';
import { overview, type ViewSources } from './views';

/**
 * `sparkify ui`: the page and its JSON API on one HTTP server (Hono on Node's http). The page is
 * static files (ui/static: HTML, a stylesheet, small ES modules) that draw what /api returns.
 */

export const STATIC_DIR = resolve(__dirname, 'static');

export interface UiServerOptions {
  config: Config;
  /** Default: the configured lake and raw roots. */
  lake?: Lake;
  raw?: Lake;
  /** Default: a client connected with the config (made on first use). */
  temporal?: () => Promise<Client>;
  /** Default: config.ui.host / port / token. Port 0: any free port. */
  host?: string;
  port?: number;
  token?: string;
  /** The code version runs would use now (default: the hash of spark/, as a run publishes it). */
  codeVersion?: () => Promise<string>;
  /** How long raw-input listings are reused (default 60 s). */
  inputsTtlMs?: number;
  /** Index a lake written before the index existed when the server starts (default true). */
  rebuildMissingIndex?: boolean;
  /** Replaces the partition index (the bench's baseline reads every manifest instead). */
  index?: ViewSources['index'];
  log?: (line: string) => void;
}

export interface UiServer {
  url: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

/** Caches a value for `ttlMs`. */
function cached<T>(ttlMs: number, get: () => Promise<T>): () => Promise<T> {
  let entry: { at: number; value: Promise<T> } | undefined;
  return () => {
    if (!entry || Date.now() - entry.at > ttlMs) {
      const value = get();
      entry = { at: Date.now(), value };
      value.catch(() => (entry = undefined));
    }
    return entry.value;
  };
}

export async function startUiServer(o: UiServerOptions): Promise<UiServer> {
  const { config } = o;
  const log = o.log ?? (() => undefined);
  const host = o.host ?? config.ui.host;
  const token = o.token ?? config.ui.token;
  checkBinding(host, token);
  const s3 = s3ClientFor({ region: config.emr.region, endpoint: config.s3.endpoint });
  const lake = o.lake ?? openLake(config.storage.lake, { s3 });
  const raw = o.raw ?? openLake(config.storage.raw, { s3 });

  if (o.rebuildMissingIndex !== false && !(await indexBuilt(lake))) {
    log(`indexing the manifests in ${lake.uri} (a lake written before the partition index existed) ...`);
    const r = await rebuildIndex(lake);
    log(`indexed ${r.partitions} partitions of ${r.assets} assets`);
  }

  // The page should answer quickly even when Temporal does not: a short connect timeout.
  const uiConfig: Config = {
    ...config,
    temporal: { ...config.temporal, connectTimeoutMs: Math.min(config.temporal.connectTimeoutMs, 3_000) },
  };
  const temporal = new TemporalAccess(
    o.temporal ?? ((retryWhile) => connectClient(uiConfig, { retryWhile })),
  );
  const links = new TemporalLinks(
    config.ui.temporalWebUrl ?? `http://127.0.0.1:${config.dev.uiPort}`,
    config.temporal.namespace,
  );
  const sources: ViewSources = {
    lake,
    raw,
    index: o.index ?? new IndexReader(lake),
    inputs: new InputFingerprintCache(raw, o.inputsTtlMs ?? 60_000),
    codeVersion: o.codeVersion ?? cached(10_000, async () => (await projectBundle()).hash),
    running: () => temporal.use((client) => runningMaterializations(client)),
    price: { instanceHourUsd: config.emr.instanceHourUsd, instanceCount: config.emr.instanceCount },
  };

  // Warm the caches the first view needs (index generations, raw listings) while nobody waits.
  void overview(sources).catch(() => undefined);

  const app = new Hono();
  app.use(
    '*',
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
      },
    }),
  );
  app.use('*', guard({ loopback: isLoopbackAddress(host), token }));
  app.route('/api', createApi({ config, sources, temporal, links }));
  app.use('/*', serveStatic({ root: STATIC_DIR }));
  app.notFound((c) =>
    c.req.path.startsWith('/api/') ? c.json({ error: 'no such route' }, 404) : c.text('not found', 404),
  );

  const server = serve({ fetch: app.fetch, hostname: host, port: o.port ?? config.ui.port });
  await new Promise<void>((res, rej) => {
    server.once('listening', res);
    server.once('error', rej);
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}`,
    host,
    port,
    async close() {
      await new Promise<void>((res) => {
        server.close(() => res());
        // Keep-alive connections from a browser would otherwise hold close() open.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      // A client handed in belongs to the caller.
      if (!o.temporal) await temporal.close();
    },
  };
}
