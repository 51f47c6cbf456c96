import proxyaddr from 'proxy-addr';
import type { IncomingMessage } from 'node:http';

/**
 * TRUST_PROXY, parsed: Express's `trust proxy` values. false trusts no proxy
 * (X-Forwarded-For is ignored), true trusts every hop, a number trusts that
 * many hops from the socket, a list trusts those addresses, CIDR ranges and
 * proxy-addr's names (`loopback`, `linklocal`, `uniquelocal`).
 */
export type TrustProxySetting = boolean | number | string[];

export type TrustFn = (address: string, hop: number) => boolean;

/** TRUST_PROXY's text to its setting; throws an Error saying what is wrong. Unset, `false` and `0` are off. */
export function parseTrustProxy(raw: string | undefined): TrustProxySetting {
  if (raw === undefined || raw === 'false') return false;
  if (raw === 'true') return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  const entries = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const entry of entries) {
    try {
      proxyaddr.compile(entry);
    } catch {
      throw new Error(`"${entry}" is not an address, CIDR range, loopback, linklocal or uniquelocal (or use true, false or a hop count)`);
    }
  }
  return entries;
}

const compiled = new WeakMap<object, TrustFn>();

/**
 * The one trust function for a setting (compiled once per configuration): it
 * is given to Express as its `trust proxy` (so req.ip and the order routes'
 * throttle use it) and used by the webhook route, which answers outside
 * Express, through clientAddress. Same rules as Express's own compilation of
 * these values.
 */
export function trustFunction(config: { trustProxy: TrustProxySetting }): TrustFn {
  let fn = compiled.get(config);
  if (!fn) {
    const setting = config.trustProxy;
    if (setting === true) fn = () => true;
    else if (setting === false) fn = () => false;
    else if (typeof setting === 'number') fn = (_address, hop) => hop < setting;
    else fn = proxyaddr.compile(setting);
    compiled.set(config, fn);
  }
  return fn;
}

/** The client's address as Express's req.ip gives it for the same trust function. */
export function clientAddress(req: IncomingMessage, trust: TrustFn): string {
  return proxyaddr(req, trust);
}
