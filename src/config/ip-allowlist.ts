import ipaddr from 'ipaddr.js';
import { isIP } from 'node:net';
import { STRIPE_WEBHOOK_IPS } from './stripe-webhook-ips';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

interface Range {
  address: Address;
  bits: number;
}

/**
 * A client address as the allowlist and the throttle see it: IPv4, or IPv6
 * without its zone id; an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, what a
 * dual-stack socket reports for an IPv4 client) is the IPv4 address it
 * carries. undefined when the text is not an address.
 */
export function parseClientAddress(text: string | undefined): Address | undefined {
  if (!text) return undefined;
  const bare = text.includes('%') ? text.slice(0, text.indexOf('%')) : text;
  // net.isIP is strict (no "1.2.3" or octal forms, which ipaddr.js would accept).
  if (isIP(bare) === 0) return undefined;
  return ipaddr.process(bare);
}

/**
 * One WEBHOOK_ALLOWED_IPS entry: an address (a range of one) or a CIDR range,
 * IPv4 or IPv6. Throws an Error naming the entry when it is neither.
 */
export function parseRange(entry: string): Range {
  const slash = entry.indexOf('/');
  const text = slash === -1 ? entry : entry.slice(0, slash);
  const prefix = slash === -1 ? undefined : entry.slice(slash + 1);
  if (isIP(text) === 0) throw new Error(`"${entry}" is not an IP address or CIDR range`);
  let address: Address = ipaddr.parse(text);
  const maxBits = address.kind() === 'ipv4' ? 32 : 128;
  let bits = maxBits;
  if (prefix !== undefined) {
    if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > maxBits) throw new Error(`"${entry}" has a prefix length outside 0-${maxBits}`);
    bits = Number(prefix);
  }
  // ::ffff:10.0.0.0/104 is 10.0.0.0/8: clients are compared in IPv4 form.
  if (address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress() && bits >= 96) {
    address = address.toIPv4Address();
    bits -= 96;
  }
  return { address, bits };
}

/**
 * WEBHOOK_ALLOWED_IPS as written (comma-separated addresses and CIDR ranges;
 * `stripe` stands for Stripe's published webhook addresses and may be mixed
 * with others) to the list of entries. Throws an Error naming a bad entry.
 */
export function expandAllowlist(raw: string): string[] {
  const entries = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .flatMap((entry) => (entry.toLowerCase() === 'stripe' ? [...STRIPE_WEBHOOK_IPS] : [entry]));
  if (entries.length === 0) throw new Error('names no address');
  for (const entry of entries) parseRange(entry);
  return entries;
}

/** Matches client addresses against a fixed list of addresses and CIDR ranges, IPv4 and IPv6. */
export class IpAllowlist {
  private readonly v4: Range[] = [];
  private readonly v6: Range[] = [];

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const range = parseRange(entry);
      (range.address.kind() === 'ipv4' ? this.v4 : this.v6).push(range);
    }
  }

  /** Whether the address (socket or X-Forwarded-For form) lies in a listed range; false for anything that is not an address. */
  allows(text: string | undefined): boolean {
    const address = parseClientAddress(text);
    if (!address) return false;
    if (address instanceof ipaddr.IPv4) {
      if (this.v4.some((r) => address.match(r.address as ipaddr.IPv4, r.bits))) return true;
      // An IPv6 range wide enough to hold the IPv4-mapped block (::/0, ::ffff:0:0/96 and the like).
      if (this.v6.length === 0) return false;
      const mapped = address.toIPv4MappedAddress();
      return this.v6.some((r) => mapped.match(r.address as ipaddr.IPv6, r.bits));
    }
    return this.v6.some((r) => address.match(r.address as ipaddr.IPv6, r.bits));
  }
}
