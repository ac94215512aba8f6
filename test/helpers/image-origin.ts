/**
 * A plain image origin over http or https (a self-signed certificate made
 * with `openssl` at test time): every path answers the PNG fixture, and each
 * request's client port is recorded, so a test can tell who connected.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttp, type RequestListener, type Server } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PNG = readFileSync(new URL('../../fixtures/images/image.png', import.meta.url));

export type ImageOrigin = {
  /** `http(s)://127.0.0.1:<port>` */
  readonly origin: string;
  /** The client port of every request, in arrival order. */
  readonly clientPorts: readonly number[];
  close(): Promise<void>;
};

export type SelfSigned = { readonly key: string; readonly cert: string; readonly certPath: string };

/** A key and a certificate for 127.0.0.1 and localhost, in a temp folder removed by `dispose`. */
export function selfSigned(): SelfSigned & { dispose(): void } {
  const folder = mkdtempSync(join(tmpdir(), 'imgjob-tls-'));
  const keyPath = join(folder, 'key.pem');
  const certPath = join(folder, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return {
    key: readFileSync(keyPath, 'utf8'),
    cert: readFileSync(certPath, 'utf8'),
    certPath,
    dispose: () => {
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

export async function startImageOrigin(tls?: SelfSigned): Promise<ImageOrigin> {
  const clientPorts: number[] = [];
  const listener: RequestListener = (req, res) => {
    clientPorts.push(req.socket.remotePort ?? 0);
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length });
    res.end(PNG);
  };
  const server: Server = tls
    ? createHttps({ key: tls.key, cert: tls.cert }, listener)
    : createHttp(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    clientPorts,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
