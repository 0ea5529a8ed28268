import {once} from 'node:events';
import * as http from 'node:http';
import type * as net from 'node:net';
import type {Teardown} from './_registry.js';

/** What the proxy does to one request: pass it, answer it itself, or pass it and spoil the answer. */
export type Fault =
  | {readonly kind: 'status'; readonly status: number; readonly headers?: Record<string, string>}
  | {readonly kind: 'cut'; readonly after: number}
  | {readonly kind: 'corrupt'}
  | {readonly kind: 'ignore-range'}
  | {readonly kind: 'drop'};

/** A rule: the first request matching `method` and `path` (a RegExp) gets `fault`, `times` times. */
export interface FaultRule {
  readonly method?: string;
  readonly path: RegExp;
  readonly fault: Fault;
  times: number;
}

export interface FaultProxy {
  /** `127.0.0.1:<port>`: a registry host that forwards to the real one. */
  readonly host: string;
  /** Adds a rule; rules are tried in order. */
  add(rule: Omit<FaultRule, 'times'> & {times?: number}): void;
  /** Every request seen, `METHOD path [Range]`, for assertions. */
  readonly seen: string[];
}

/**
 * A small HTTP proxy in front of a registry that injects faults: an error status, a body
 * cut after N bytes (the socket destroyed, as a dropped connection), a flipped byte, a
 * Range header ignored (the whole blob answered 200), or a connection closed at once.
 * Location headers are rewritten to point at the proxy, so uploads stay behind it too.
 */
export async function startFaultProxy(t: Teardown, target: string): Promise<FaultProxy> {
  const rules: FaultRule[] = [];
  const seen: string[] = [];
  let self = '';
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    const rule = rules.find(r => r.times > 0 && (!r.method || r.method === req.method) && r.path.test(req.url ?? ''));
    if (rule) rule.times--;
    const fault = rule?.fault;
    if (fault?.kind === 'status') {
      req.resume();
      res.writeHead(fault.status, {'content-type': 'application/json', ...fault.headers}).end('{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}');
      return;
    }
    if (fault?.kind === 'drop') {
      req.socket.destroy();
      return;
    }
    const headers = {...req.headers, host: target};
    if (fault?.kind === 'ignore-range') delete headers.range;
    const up = http.request({host: target.split(':')[0], port: Number(target.split(':')[1]), method: req.method, path: req.url, headers}, upRes => {
      const outHeaders = {...upRes.headers};
      if (typeof outHeaders.location === 'string') outHeaders.location = outHeaders.location.replace(`http://${target}`, `http://${self}`);
      res.writeHead(upRes.statusCode ?? 502, outHeaders);
      let sent = 0;
      upRes.on('data', (chunk: Buffer) => {
        if (fault?.kind === 'cut' && sent + chunk.length > fault.after) {
          res.write(chunk.subarray(0, fault.after - sent));
          upRes.destroy();
          setImmediate(() => res.socket?.destroy());
          return;
        }
        if (fault?.kind === 'corrupt' && sent === 0 && chunk.length > 0) {
          chunk = Buffer.from(chunk);
          chunk[chunk.length >> 1]! ^= 0xff;
        }
        sent += chunk.length;
        res.write(chunk);
      });
      upRes.on('end', () => res.end());
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  self = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise(r => server.close(r));
  });
  return {host: self, add: rule => rules.push({...rule, times: rule.times ?? 1}), seen};
}
