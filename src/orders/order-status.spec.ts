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
      for (const unpaid of ['pending_payment', 'requires_action', 'processing', 'authorized', 'payment_failed', 'canceled', 'expired'] as const) {
        expect(canTransition(paidLike, unpaid)).toBe(false);
      }
    }
  });

  it('lets a later successful attempt pay an order whose first attempt failed', () => {
    expect(canTransition('payment_failed', 'paid')).toBe(true);
    expect(canTransition('payment_failed', 'requires_action')).toBe(true);
  });

  it('lets canceled, expired and lost-dispute orders change only to needs_review (money they did not ask for), and keeps needs_review final', () => {
    expect(TRANSITIONS.canceled).toEqual(['needs_review']);
    expect(TRANSITIONS.expired).toEqual(['needs_review']);
    expect(TRANSITIONS.dispute_lost).toEqual(['needs_review']);
    expect(TRANSITIONS.needs_review).toEqual([]);
  });

  it('lets a won dispute return the order to where it was, and a lost one end it', () => {
    expect([...TRANSITIONS.disputed].sort()).toEqual(['dispute_lost', 'needs_review', 'paid', 'partially_refunded', 'refunded']);
    for (const s of ['paid', 'partially_refunded', 'refunded'] as const) expect(canTransition(s, 'dispute_lost')).toBe(true);
  });

  it('lets a refund that failed move the status back down, never below paid', () => {
    expect(canTransition('refunded', 'partially_refunded')).toBe(true);
    expect(canTransition('refunded', 'paid')).toBe(true);
    expect(canTransition('partially_refunded', 'paid')).toBe(true);
  });

  it('reaches needs_review from every other status: a payment the order did not ask for can come at any time', () => {
    for (const s of ORDER_STATUSES) if (s !== 'needs_review') expect(canTransition(s, 'needs_review')).toBe(true);
  });

  it('holds an authorization until it is captured (paid), voided (canceled) or lapses (expired); it never goes back to unpaid', () => {
    expect(TRANSITIONS.authorized).toEqual(['paid', 'canceled', 'expired', 'needs_review']);
    for (const unpaid of ['pending_payment', 'requires_action', 'processing', 'payment_failed'] as const) {
      expect(canTransition(unpaid, 'authorized')).toBe(true);
      expect(canTransition('authorized', unpaid)).toBe(false);
    }
    expect(RANK.authorized).toBeGreaterThan(RANK.processing);
    expect(RANK.authorized).toBeLessThan(RANK.paid);
  });

  it('expires only orders that hold no money', () => {
    const into = ORDER_STATUSES.filter((s) => canTransition(s, 'expired')).sort();
    expect(into).toEqual(['authorized', 'payment_failed', 'pending_payment', 'processing', 'requires_action']);
  });

  it('ranks refunds and disputes above paid, and paid above every unpaid state', () => {
    for (const s of ['pending_payment', 'requires_action', 'processing', 'payment_failed'] as const) expect(RANK[s]).toBeLessThan(RANK.paid);
    expect(RANK.partially_refunded).toBeGreaterThan(RANK.paid);
    expect(RANK.refunded).toBeGreaterThan(RANK.partially_refunded);
  });
});
