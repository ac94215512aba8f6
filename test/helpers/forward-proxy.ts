/**
 * A real forward proxy for tests, as small as one can be: plain http
 * requests in absolute-URI form are forwarded, `CONNECT host:port` opens a
 * tunnel. It records what it saw, and the local ports of the connections it
 * opened to the servers behind it, so a test can check that every request a
 * server received came through the proxy.
 */
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

export type ProxiedRequest = {
  readonly method: string;
  /** The absolute URI, or `host:port` of a CONNECT. */
  readonly target: string;
  readonly headers: IncomingHttpHeaders;
};

export type ForwardProxy = {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly seen: readonly ProxiedRequest[];
  /** Local ports of the connections it opened upstream. */
  readonly upstreamPorts: ReadonlySet<number>;
  close(): Promise<void>;
};

export async function startForwardProxy(): Promise<ForwardProxy> {
  const seen: ProxiedRequest[] = [];
  const upstreamPorts = new Set<number>();
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', target: req.url ?? '', headers: req.headers });
    const target = new URL(req.url ?? '');
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = request(target, { method: req.method, headers, agent: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('socket', (socket) => {
      socket.on('connect', () => upstreamPorts.add(socket.localPort ?? 0));
    });
    upstream.on('error', () => {
      res.destroy();
    });
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('connect', (req, client: Socket, head: Buffer) => {
    seen.push({ method: 'CONNECT', target: req.url ?? '', headers: req.headers });
    const [host = '', port = ''] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      upstreamPorts.add(upstream.localPort ?? 0);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    upstreamPorts,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}
