import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { TrustProxy } from '../config.js';

/** Decides, for one request, which address is the client's: the same on HTTP and on a WebSocket's upgrade. */
export type ClientAddress = (req: IncomingMessage) => string;

/**
 * The client's address by express's `trust proxy` rules (TANGENT_TRUST_PROXY): walk from the
 * socket's peer back through X-Forwarded-For, right to left, while the address at hand is a trusted
 * proxy; the first one that is not, or the leftmost, is the client. With nothing trusted (the
 * default) X-Forwarded-For is ignored, since any client can send one: per-address limits would
 * otherwise be a header away from being dodged, or pinned on someone else.
 */
export function clientAddressOf(trust: TrustProxy): ClientAddress {
  const trusted = trustFunction(trust);
  return (req) => {
    const peer = normalise(req.socket.remoteAddress ?? 'unknown');
    if (trust.kind === 'none') return peer;
    const header = req.headers['x-forwarded-for'];
    const forwarded = (Array.isArray(header) ? header.join(',') : (header ?? ''))
      .split(',')
      .map((a) => normalise(a.trim()))
      .filter(Boolean)
      .reverse();
    const chain = [peer, ...forwarded];
    for (let i = 0; i < chain.length - 1; i++) {
      if (!trusted(chain[i]!, i)) return chain[i]!;
    }
    return chain[chain.length - 1]!;
  };
}

function trustFunction(trust: TrustProxy): (address: string, hop: number) => boolean {
  switch (trust.kind) {
    case 'none':
      return () => false;
    case 'all':
      return () => true;
    case 'hops':
      return (_address, hop) => hop < trust.hops;
    case 'list': {
      const list = new BlockList();
      for (const r of trust.ranges) list.addSubnet(r.address, r.prefix, r.family);
      return (address) => {
        const family = isIP(address);
        return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
      };
    }
  }
}

/** `::ffff:10.0.0.1` (an IPv4 peer of a dual-stack socket) as `10.0.0.1`, so one client has one address. */
function normalise(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return mapped ? mapped[1]! : address;
}
