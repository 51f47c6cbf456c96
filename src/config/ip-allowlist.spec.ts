import { expandAllowlist, IpAllowlist, parseClientAddress } from './ip-allowlist';
import { STRIPE_WEBHOOK_IPS } from './stripe-webhook-ips';

describe('IpAllowlist', () => {
  it.each([
    // [entries, address, allowed]
    [['127.0.0.2'], '127.0.0.2', true],
    [['127.0.0.2'], '127.0.0.3', false],
    [['10.0.0.0/8'], '10.255.1.2', true],
    [['10.0.0.0/8'], '11.0.0.1', false],
    [['192.168.1.0/24'], '192.168.1.255', true],
    [['192.168.1.0/24'], '192.168.2.0', false],
    [['192.168.1.128/25'], '192.168.1.127', false],
    [['192.168.1.128/25'], '192.168.1.128', true],
    [['0.0.0.0/0'], '203.0.113.9', true],
    [['2001:db8::/32'], '2001:db8:ffff::1', true],
    [['2001:db8::/32'], '2001:db9::1', false],
    [['2001:db8::1'], '2001:0db8:0000:0000:0000:0000:0000:0001', true],
    [['::1'], '::1', true],
    [['fe80::/10'], 'fe80::1%eth0', true],
  ])('%j allows %s: %s', (entries, address, allowed) => {
    expect(new IpAllowlist(entries).allows(address)).toBe(allowed);
  });

  it('matches an IPv4-mapped IPv6 client (a dual-stack socket) against IPv4 entries', () => {
    const list = new IpAllowlist(['127.0.0.2', '10.0.0.0/8']);
    expect(list.allows('::ffff:127.0.0.2')).toBe(true);
    expect(list.allows('::ffff:a01:203')).toBe(true);
    expect(list.allows('::ffff:127.0.0.1')).toBe(false);
    expect(list.allows('::ffff:11.0.0.1')).toBe(false);
  });

  it('matches IPv4 clients against IPv4-mapped entries and IPv6 ranges that contain them', () => {
    expect(new IpAllowlist(['::ffff:10.0.0.0/104']).allows('10.9.9.9')).toBe(true);
    expect(new IpAllowlist(['::ffff:10.0.0.0/104']).allows('11.9.9.9')).toBe(false);
    expect(new IpAllowlist(['::ffff:127.0.0.2']).allows('127.0.0.2')).toBe(true);
    expect(new IpAllowlist(['::/0']).allows('198.51.100.1')).toBe(true);
    expect(new IpAllowlist(['2001:db8::/32']).allows('198.51.100.1')).toBe(false);
  });

  it('does not mix families: an IPv4 range never matches a native IPv6 client', () => {
    expect(new IpAllowlist(['0.0.0.0/0']).allows('2001:db8::1')).toBe(false);
  });

  it.each([undefined, '', 'localhost', '1.2.3', '127.1', '0x7f.0.0.1', '1.2.3.4.5', '::ffff:1.2.3', 'not an address'])('allows nothing that is not an address: %p', (address) => {
    expect(new IpAllowlist(['0.0.0.0/0', '::/0']).allows(address)).toBe(false);
  });
});

describe('parseClientAddress', () => {
  it('reduces IPv4-mapped IPv6 to IPv4 and drops zone ids', () => {
    expect(parseClientAddress('::ffff:127.0.0.1')?.toString()).toBe('127.0.0.1');
    expect(parseClientAddress('fe80::1%lo')?.toString()).toBe('fe80::1');
    expect(parseClientAddress('2001:db8::1')?.kind()).toBe('ipv6');
  });
});

describe('expandAllowlist (WEBHOOK_ALLOWED_IPS)', () => {
  it('expands `stripe` to the published list and keeps other entries beside it', () => {
    expect(expandAllowlist('stripe')).toEqual(STRIPE_WEBHOOK_IPS);
    expect(expandAllowlist(' Stripe , 10.0.0.0/8,2001:db8::/32 ')).toEqual([...STRIPE_WEBHOOK_IPS, '10.0.0.0/8', '2001:db8::/32']);
  });

  it('the Stripe list holds only valid addresses, none twice', () => {
    expect(() => new IpAllowlist(STRIPE_WEBHOOK_IPS)).not.toThrow();
    expect(new Set(STRIPE_WEBHOOK_IPS).size).toBe(STRIPE_WEBHOOK_IPS.length);
    expect(new IpAllowlist(expandAllowlist('stripe')).allows('54.187.216.72')).toBe(true);
    expect(new IpAllowlist(expandAllowlist('stripe')).allows('127.0.0.1')).toBe(false);
  });

  it.each([
    ['', 'names no address'],
    [' , ', 'names no address'],
    ['10.0.0.0/33', '"10.0.0.0/33" has a prefix length outside 0-32'],
    ['2001:db8::/129', '"2001:db8::/129" has a prefix length outside 0-128'],
    ['10.0.0.0/', '"10.0.0.0/" has a prefix length outside 0-32'],
    ['10.0.0.0/8/8', '"10.0.0.0/8/8" has a prefix length outside 0-32'],
    ['example.com', '"example.com" is not an IP address or CIDR range'],
    ['127.1', '"127.1" is not an IP address or CIDR range'],
    ['stripe,10.0.0.256', '"10.0.0.256" is not an IP address or CIDR range'],
  ])('refuses %p: %s', (raw, message) => {
    expect(() => expandAllowlist(raw)).toThrow(message);
  });
});
