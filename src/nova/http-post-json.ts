// One JSON POST with node's http/https, TLS set as keystoneauth's session sets it from
// [nova] (cafile, certfile/keyfile, insecure) and a hard deadline for the whole exchange.
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { NovaTls } from './nova-access.js';

export interface JsonResponse {
  status: number;
  /** the parsed body; null when empty or not JSON */
  body: unknown;
}

/** Largest answer read: nova's events answer is a few hundred bytes per event. */
const MAX_RESPONSE_BYTES = 1 << 20;

export async function postJson(url: URL, headers: Record<string, string>, body: unknown, o: { timeoutMs: number; tls: NovaTls }): Promise<JsonResponse> {
  const payload = Buffer.from(JSON.stringify(body));
  const options: RequestOptions = { method: 'POST', headers: { ...headers, 'Content-Length': String(payload.length) }, timeout: o.timeoutMs };
  const https = url.protocol === 'https:';
  if (https) {
    options.rejectUnauthorized = !o.tls.insecure;
    if (o.tls.caFile) options.ca = readFileSync(o.tls.caFile);
    if (o.tls.certFile) options.cert = readFileSync(o.tls.certFile);
    if (o.tls.keyFile) options.key = readFileSync(o.tls.keyFile);
  }
  return new Promise<JsonResponse>((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)(url, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) req.destroy(new Error(`nova's answer exceeds ${MAX_RESPONSE_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = null;
        try {
          parsed = text ? (JSON.parse(text) as unknown) : null;
        } catch {
          parsed = null; // not JSON: the caller sees no events list, which is a failure for cinder too
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    // the socket's idle timeout, plus a deadline for the whole exchange (a slow trickle too)
    const deadline = setTimeout(() => req.destroy(new Error(`no answer from nova within ${o.timeoutMs} ms`)), o.timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`no answer from nova within ${o.timeoutMs} ms`)));
    req.on('error', reject);
    req.on('close', () => clearTimeout(deadline));
    req.end(payload);
  });
}
