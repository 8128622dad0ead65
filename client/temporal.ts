import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow/tls-config';
import type { Config } from '../config/config';

export interface TemporalConnectionOptions {
  address: string;
  tls: TLSConfig | false;
  apiKey?: string;
}

/** Connection options shared by the client and the worker: address, TLS and API key. */
export function temporalConnectionOptions(config: Config): TemporalConnectionOptions {
  const t = config.temporal;
  const read = (path: string | undefined) => (path ? readFileSync(path) : undefined);
  const cert = read(t.tlsCertPath);
  const key = read(t.tlsKeyPath);
  const tlsWanted = t.tls || t.apiKey !== undefined || cert !== undefined;
  return {
    address: t.address,
    tls: tlsWanted
      ? {
          serverNameOverride: t.tlsServerName,
          serverRootCACertificate: read(t.tlsCaPath),
          clientCertPair: cert && key ? { crt: cert, key } : undefined,
        }
      : false,
    apiKey: t.apiKey,
  };
}

export async function connectClient(config: Config): Promise<Client> {
  const connection = await Connection.connect(temporalConnectionOptions(config));
  return new Client({ connection, namespace: config.temporal.namespace });
}
