import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { EventSigner } from './event-signer';

describe('EventSigner', () => {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const signer = new EventSigner(secret);
  const library = new Webhook(secret);

  it.each([
    ['a plain body', '{"id":"oev_1","type":"order.paid"}'],
    ['non-ASCII text', '{"note":"Überweisung – 10 € ✓ 日本"}'],
    ['an empty body', ''],
    ['a large body', JSON.stringify({ data: 'x'.repeat(100_000) })],
  ])('signs %s exactly as the standardwebhooks library does, and its verify accepts it', (_what, body) => {
    const at = new Date(1_796_000_000_123);
    const signature = signer.sign('oev_abc', at, body);
    expect(signature).toBe(library.sign('oev_abc', at, body));
    const headers = { 'webhook-id': 'oev_abc', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': '' };
    headers['webhook-signature'] = signer.sign('oev_abc', new Date(), body);
    expect(() => library.verify(body, headers)).not.toThrow();
  });

  it('signs differently for another id, time, body or secret', () => {
    const at = new Date(1_796_000_000_000);
    const base = signer.sign('oev_a', at, '{}');
    expect(signer.sign('oev_b', at, '{}')).not.toBe(base);
    expect(signer.sign('oev_a', new Date(at.getTime() + 1000), '{}')).not.toBe(base);
    expect(signer.sign('oev_a', at, '{ }')).not.toBe(base);
    expect(new EventSigner(`whsec_${randomBytes(32).toString('base64')}`).sign('oev_a', at, '{}')).not.toBe(base);
  });

  it('refuses an empty secret', () => {
    expect(() => new EventSigner('whsec_')).toThrow('empty');
  });
});
