import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpRequest } from '../../src/images/http.js';

async function server(handler: http.RequestListener): Promise<{ origin: string; close(): Promise<void> }> {
  const s = http.createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    origin: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        s.closeAllConnections();
        s.close(() => r());
      }),
  };
}

describe('images: HTTP requests', () => {
  it('drops Authorization on a redirect to another origin, keeps it on the same origin', async () => {
    const seen: Record<string, string | undefined> = {};
    const storage = await server((req, res) => {
      seen[`storage ${req.url}`] = req.headers.authorization;
      res.end('blob');
    });
    const registry = await server((req, res) => {
      seen[`registry ${req.url}`] = req.headers.authorization;
      if (req.url === '/away') res.writeHead(307, { location: `${storage.origin}/data` }).end();
      else if (req.url === '/here') res.writeHead(302, { location: '/final' }).end();
      else res.end('ok');
    });
    try {
      const headers = { authorization: 'Bearer secret' };
      const away = await httpRequest(`${registry.origin}/away`, { method: 'GET', headers });
      let text = '';
      for await (const c of away.body) text += String(c);
      assert.equal(text, 'blob');
      assert.equal(away.url, `${storage.origin}/data`);
      assert.equal(seen['storage /data'], undefined);
      const here = await httpRequest(`${registry.origin}/here`, { method: 'GET', headers });
      here.body.resume();
      assert.equal(seen['registry /final'], 'Bearer secret');
    } finally {
      await registry.close();
      await storage.close();
    }
  });

  it('fails a request whose connection goes idle', async () => {
    const silent = await server(() => {
      /* never answers */
    });
    try {
      await assert.rejects(
        httpRequest(`${silent.origin}/`, { method: 'GET', idleTimeoutMs: 100 }),
        (err: Error & { code?: string }) => err.code === 'ETIMEDOUT',
      );
    } finally {
      await silent.close();
    }
  });
});
