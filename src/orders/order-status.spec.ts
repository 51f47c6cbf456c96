import { ORDER_STATUSES, RANK, TRANSITIONS, canTransition, validateTransitionTable } from './order-status';

describe('order status machine', () => {
  it('is valid: every target is known and every status reachable', () => {
    expect(() => validateTransitionTable(TRANSITIONS, 'pending_payment')).not.toThrow();
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...ORDER_STATUSES].sort());
  });

  it('rejects a table with an unknown target or an unreachable status', () => {
    expect(() => validateTransitionTable({ a: ['b'] }, 'a')).toThrow(/unknown status "b"/);
    expect(() => validateTransitionTable({ a: [], b: [] }, 'a')).toThrow(/unreachable b/);
  });

  it('never lets a paid order fall back to an unpaid state', () => {
    for (const paidLike of ['paid', 'partially_refunded', 'refunded', 'disputed'] as const) {
      for (const unpaid of ['pending_payment', 'requires_action', 'processing', 'payment_failed', 'canceled'] as const) {
        expect(canTransition(paidLike, unpaid)).toBe(false);
      }
    }
  });

  it('lets a later successful attempt pay an order whose first attempt failed', () => {
    expect(canTransition('payment_failed', 'paid')).toBe(true);
    expect(canTransition('payment_failed', 'requires_action')).toBe(true);
  });

  it('keeps canceled, disputed and needs_review final', () => {
    expect(TRANSITIONS.canceled).toEqual([]);
    expect(TRANSITIONS.disputed).toEqual([]);
    expect(TRANSITIONS.needs_review).toEqual([]);
  });

  it('ranks refunds and disputes above paid, and paid above every unpaid state', () => {
    for (const s of ['pending_payment', 'requires_action', 'processing', 'payment_failed'] as const) expect(RANK[s]).toBeLessThan(RANK.paid);
    expect(RANK.partially_refunded).toBeGreaterThan(RANK.paid);
    expect(RANK.refunded).toBeGreaterThan(RANK.partially_refunded);
  });
});
