import fc from 'fast-check';
import type Stripe from 'stripe';
import { ORDER_STATUSES, OrderStatus, canTransition } from './order-status';
import { HeldState, PspFact, decide, decideForeign, factFromIntent, nextRefundStatus, readEvent, refundedOfCaptured, targetForIntent } from './payment-state';
import { historyProblems } from '../../test/support/psp-flows';
import { shuffle } from '../../test/support/shuffle';

const ORDER_ID = '0b7c2a9e-5f1d-4c8e-9a7b-3d2e1f0a9b8c';
const AMOUNT = 3448;

function held(overrides: Partial<HeldState> = {}): HeldState {
  return { orderId: ORDER_ID, orderStatus: 'pending_payment', orderAmount: AMOUNT, orderCurrency: 'usd', amountRefunded: 0, amountCaptured: null, captureMethod: 'automatic', lastEventCreated: 0, dispute: null, statusBeforeDispute: null, ...overrides };
}

function disputeFact(created: number, status = 'needs_response'): PspFact {
  return { kind: 'dispute', disputeId: 'dp_1', created, status, reason: 'fraudulent', amount: AMOUNT, evidenceDueBy: null };
}

function pay(target: OrderStatus | null, created: number, extra: Partial<Extract<PspFact, { kind: 'payment' }>> = {}): PspFact {
  return { kind: 'payment', target, intentStatus: 'x', amount: AMOUNT, currency: 'usd', orderIdInMetadata: ORDER_ID, created, ...extra };
}

describe('decide (the payment status machine)', () => {
  it('moves an unpaid order to paid on success', () => {
    expect(decide(held(), pay('paid', 10))).toMatchObject({ outcome: 'applied', steps: ['paid'], lastEventCreated: 10 });
  });

  it('never downgrades: a failure or processing seen after paid is stale', () => {
    expect(decide(held({ orderStatus: 'paid', lastEventCreated: 10 }), pay('payment_failed', 20))).toMatchObject({ outcome: 'stale', steps: [] });
    expect(decide(held({ orderStatus: 'paid', lastEventCreated: 10 }), pay('processing', 5))).toMatchObject({ outcome: 'stale', steps: [] });
  });

  it('lets a success after an earlier failure reach paid, whatever its age', () => {
    expect(decide(held({ orderStatus: 'payment_failed', lastEventCreated: 20 }), pay('paid', 10)).steps).toEqual(['paid']);
  });

  it('applies a sideways move only when strictly newer, and asks for the PSP state on a tie', () => {
    const h = held({ orderStatus: 'requires_action', lastEventCreated: 10 });
    expect(decide(h, pay('payment_failed', 11)).steps).toEqual(['payment_failed']);
    expect(decide(h, pay('payment_failed', 9)).outcome).toBe('stale');
    expect(decide(h, pay('payment_failed', 10))).toMatchObject({ needsPspState: true, steps: [] });
    expect(decide(h, pay('payment_failed', 10, { authoritative: true })).steps).toEqual(['payment_failed']);
  });

  it('sends a mismatching amount, currency or order id to needs_review', () => {
    expect(decide(held(), pay('paid', 1, { amount: 1 }))).toMatchObject({ outcome: 'needs_review', steps: ['needs_review'] });
    expect(decide(held(), pay('paid', 1, { currency: 'eur' })).steps).toEqual(['needs_review']);
    expect(decide(held(), pay('paid', 1, { orderIdInMetadata: 'someone-else' })).steps).toEqual(['needs_review']);
    // Whatever the status: a payment that does not match is for a person to look at.
    expect(decide(held({ orderStatus: 'refunded' }), pay('paid', 1, { amount: 1 })).steps).toEqual(['needs_review']);
    expect(decide(held({ orderStatus: 'needs_review' }), pay('paid', 1, { amount: 1 })).steps).toEqual([]);
  });

  it('takes the refunded figure from the PSP, never adding to it', () => {
    const partial = decide(held({ orderStatus: 'paid' }), { kind: 'refund', amountRefunded: 1000, created: 5 });
    expect(partial).toMatchObject({ steps: ['partially_refunded'], amountRefunded: 1000 });
    const again = decide(held({ orderStatus: 'partially_refunded', amountRefunded: 1000 }), { kind: 'refund', amountRefunded: 1000, created: 6 });
    expect(again).toMatchObject({ steps: [], amountRefunded: 1000, outcome: 'noop' });
    // An older, smaller figure arriving late does not lower what the PSP already reported.
    const late = decide(held({ orderStatus: 'refunded', amountRefunded: AMOUNT }), { kind: 'refund', amountRefunded: 1000, created: 4 });
    expect(late).toMatchObject({ steps: [], amountRefunded: AMOUNT });
  });

  it('goes through paid when a refund or dispute is seen before the success', () => {
    expect(decide(held(), { kind: 'refund', amountRefunded: AMOUNT, created: 5 }).steps).toEqual(['paid', 'refunded']);
    expect(decide(held({ orderStatus: 'requires_action' }), disputeFact(5)).steps).toEqual(['paid', 'disputed']);
    expect(decide(held({ orderStatus: 'refunded' }), disputeFact(5)).steps).toEqual(['disputed']);
    expect(decide(held({ orderStatus: 'canceled' }), disputeFact(5)).steps).toEqual([]);
  });

  it('only ever proposes steps the transition table allows', () => {
    const statuses: OrderStatus[] = [...ORDER_STATUSES];
    const fact = fc.oneof(
      fc.record({ kind: fc.constant('payment' as const), target: fc.constantFrom<OrderStatus | null>(null, ...statuses), intentStatus: fc.constant('x'), created: fc.integer({ min: 0, max: 5 }), authoritative: fc.boolean() }),
      fc.record({ kind: fc.constant('refund' as const), amountRefunded: fc.integer({ min: 0, max: AMOUNT }), created: fc.integer({ min: 0, max: 5 }) }),
      fc.record({
        kind: fc.constant('dispute' as const),
        disputeId: fc.constant('dp_1'),
        created: fc.integer({ min: 0, max: 5 }),
        status: fc.constantFrom('needs_response', 'under_review', 'won', 'lost', 'warning_closed'),
        reason: fc.constant('fraudulent'),
        amount: fc.constant(AMOUNT),
        evidenceDueBy: fc.constant(null),
      }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...statuses), fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: AMOUNT }), fact, (status, last, refunded, f) => {
        const d = decide(held({ orderStatus: status, lastEventCreated: last, amountRefunded: refunded }), f);
        let at = status;
        for (const step of d.steps) {
          expect(canTransition(at, step)).toBe(true);
          at = step;
        }
        expect(d.amountRefunded).toBeGreaterThanOrEqual(refunded);
        expect(d.lastEventCreated).toBeGreaterThanOrEqual(last);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('readEvent', () => {
  const event = (type: string, object: object, created = 100) => ({ type, created, data: { object } }) as unknown as Stripe.Event;

  it('reads PaymentIntent, charge, refund and dispute events', () => {
    const pi = { id: 'pi_1', object: 'payment_intent', status: 'requires_payment_method', amount: AMOUNT, currency: 'usd', metadata: { order_id: ORDER_ID }, last_payment_error: { code: 'card_declined' } };
    expect(readEvent(event('payment_intent.payment_failed', pi))).toMatchObject({ paymentIntentId: 'pi_1', fact: { target: 'payment_failed', orderIdInMetadata: ORDER_ID } });
    expect(readEvent(event('payment_intent.created', { ...pi, last_payment_error: null }))?.fact).toMatchObject({ target: null });
    expect(readEvent(event('charge.succeeded', { id: 'ch_1', payment_intent: 'pi_1', amount: AMOUNT, currency: 'usd', metadata: {} }))?.fact).toMatchObject({ target: 'paid', orderIdInMetadata: undefined });
    expect(readEvent(event('charge.refunded', { id: 'ch_1', payment_intent: 'pi_1', amount_refunded: 1000 }))?.fact).toEqual({ kind: 'refund', amountRefunded: 1000, created: 100 });
    expect(readEvent(event('refund.created', { id: 're_1', payment_intent: 'pi_1', charge: 'ch_1', amount: 1000, status: 'succeeded' }))).toMatchObject({ refund: { id: 're_1', amount: 1000, status: 'succeeded' } });
    expect(readEvent(event('charge.dispute.created', { id: 'dp_1', charge: 'ch_1', payment_intent: 'pi_1' }))).toMatchObject({ paymentIntentId: 'pi_1', fact: { kind: 'dispute' } });
    expect(readEvent(event('customer.created', { id: 'cus_1' }))).toBeNull();
  });

  it('keeps a final refund status when a late pending event arrives', () => {
    expect(nextRefundStatus('succeeded', 'pending')).toBe('succeeded');
    expect(nextRefundStatus('pending', 'succeeded')).toBe('succeeded');
    expect(nextRefundStatus(undefined, 'pending')).toBe('pending');
  });
});

/**
 * A model of the PSP emitting the event sequence of each flow, as the mock
 * does (many events share a second), with the state it ends in. The property:
 * any permutation with duplications of those events, applied the way the
 * processor applies them, ends in the state the PSP's final state implies,
 * with each transition in history once.
 */
interface Flow {
  events: Stripe.Event[];
  intent: Stripe.PaymentIntent;
  amountRefunded: number;
  disputed: boolean;
}

type Step = 'succeed' | 'fail' | 'require_action' | 'cancel' | 'refund_part' | 'refund_rest' | 'dispute';

const FLOWS: Record<string, Step[]> = {
  success: ['succeed'],
  failureThenSuccess: ['fail', 'succeed'],
  threeDsSuccess: ['require_action', 'succeed'],
  threeDsFailure: ['require_action', 'fail'],
  failureThen3dsSuccess: ['fail', 'require_action', 'succeed'],
  partialThenFullRefund: ['succeed', 'refund_part', 'refund_rest'],
  dispute: ['succeed', 'dispute'],
  cancel: ['cancel'],
  failureThenCancel: ['fail', 'cancel'],
};

function emitFlow(steps: Step[], seconds: number[]): Flow {
  let n = 0;
  let t = 1_700_000_000;
  const events: Stripe.Event[] = [];
  const intent = { id: 'pi_1', object: 'payment_intent', status: 'requires_payment_method', amount: AMOUNT, currency: 'usd', metadata: { order_id: ORDER_ID }, last_payment_error: null } as unknown as Stripe.PaymentIntent;
  const charge = { id: 'ch_1', object: 'charge', payment_intent: 'pi_1', amount: AMOUNT, currency: 'usd', amount_refunded: 0, metadata: { order_id: ORDER_ID } };
  let amountRefunded = 0;
  let disputed = false;
  const emit = (type: string, object: object) => {
    t += seconds[n % seconds.length] as number;
    events.push({ id: `evt_${++n}`, type, created: t, data: { object: JSON.parse(JSON.stringify(object)) } } as unknown as Stripe.Event);
  };
  emit('payment_intent.created', intent);
  const refund = (amount: number) => {
    amountRefunded += amount;
    charge.amount_refunded = amountRefunded;
    emit('charge.refunded', charge);
    emit('refund.created', { id: `re_${amountRefunded}`, object: 'refund', payment_intent: 'pi_1', charge: 'ch_1', amount, status: 'succeeded' });
  };
  for (const step of steps) {
    switch (step) {
      case 'succeed':
        Object.assign(intent, { status: 'succeeded', last_payment_error: null });
        emit('charge.succeeded', charge);
        emit('payment_intent.succeeded', intent);
        break;
      case 'fail':
        Object.assign(intent, { status: 'requires_payment_method', last_payment_error: { code: 'card_declined' } });
        emit('charge.failed', charge);
        emit('payment_intent.payment_failed', intent);
        break;
      case 'require_action':
        Object.assign(intent, { status: 'requires_action', last_payment_error: null });
        emit('payment_intent.requires_action', intent);
        break;
      case 'cancel':
        Object.assign(intent, { status: 'canceled' });
        emit('payment_intent.canceled', intent);
        break;
      case 'refund_part':
        refund(1000);
        break;
      case 'refund_rest':
        refund(AMOUNT - amountRefunded);
        break;
      case 'dispute':
        disputed = true;
        emit('charge.dispute.created', { id: 'dp_1', object: 'dispute', charge: 'ch_1', payment_intent: 'pi_1', amount: AMOUNT, currency: 'usd' });
        break;
    }
  }
  return { events, intent, amountRefunded, disputed };
}

/** The order status the PSP's final state implies. */
export function expectedStatus(flow: { intent: Stripe.PaymentIntent; amountRefunded: number; disputed: boolean }, amount = AMOUNT): OrderStatus {
  if (flow.disputed) return 'disputed';
  if (flow.amountRefunded >= amount) return 'refunded';
  if (flow.amountRefunded > 0) return 'partially_refunded';
  return targetForIntent(flow.intent) ?? 'pending_payment';
}

/** Applies deliveries the way WebhookProcessor does, without the database. */
function applyDeliveries(deliveries: Stripe.Event[], currentIntent: Stripe.PaymentIntent) {
  let state = held();
  const history: Array<{ from: OrderStatus; to: OrderStatus }> = [];
  const refunds = new Map<string, { amount: number; status: string }>();
  for (const event of deliveries) {
    const read = readEvent(event);
    if (!read) continue;
    let fact = read.fact;
    if (read.refund) {
      refunds.set(read.refund.id, { amount: read.refund.amount, status: nextRefundStatus(refunds.get(read.refund.id)?.status, read.refund.status) });
      const sum = [...refunds.values()].filter((r) => r.status === 'succeeded').reduce((s, r) => s + r.amount, 0);
      fact = { kind: 'refund', amountRefunded: sum, created: fact.created };
    }
    let decision = decide(state, fact);
    if (decision.needsPspState) decision = decide(state, factFromIntent(currentIntent, fact.created));
    for (const to of decision.steps) {
      history.push({ from: state.orderStatus, to });
      state = { ...state, orderStatus: to };
    }
    state = {
      ...state,
      amountRefunded: decision.amountRefunded,
      lastEventCreated: decision.lastEventCreated,
      dispute: decision.dispute ?? state.dispute,
      statusBeforeDispute: decision.statusBeforeDispute ?? state.statusBeforeDispute,
    };
  }
  return { state, history };
}

describe('any permutation and duplication of a flow\'s events ends where the PSP is', () => {
  for (const [name, steps] of Object.entries(FLOWS)) {
    it(name, () => {
      fc.assert(
        fc.property(
          // Seconds between events: mostly the same second, as the mock emits them.
          fc.array(fc.constantFrom(0, 0, 0, 1), { minLength: 1, maxLength: 12 }),
          fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          fc.array(fc.nat(), { maxLength: 6 }),
          (seconds, shuffleSeed, duplicatePicks) => {
            const flow = emitFlow(steps, seconds);
            const deliveries = [...flow.events, ...duplicatePicks.map((i) => flow.events[i % flow.events.length] as Stripe.Event)];
            shuffle(deliveries, shuffleSeed);
            const { state, history } = applyDeliveries(deliveries, flow.intent);
            expect(state.orderStatus).toBe(expectedStatus(flow));
            expect(state.amountRefunded).toBe(flow.amountRefunded);
            // No transition twice, and one chain: each entry starts where the previous one ended.
            expect(historyProblems(history)).toBeNull();
          },
        ),
        { numRuns: 1000 },
      );
    });
  }
});

describe('manual capture, expiry and payments the order did not ask for', () => {
  const intent = (fields: Partial<Stripe.PaymentIntent>) =>
    ({ id: 'pi_1', object: 'payment_intent', amount: AMOUNT, currency: 'usd', metadata: { order_id: ORDER_ID }, last_payment_error: null, cancellation_reason: null, amount_capturable: 0, amount_received: 0, ...fields }) as Stripe.PaymentIntent;

  it('reads a held authorization as authorized, and an intent canceled by its capture window or by Settle giving up as expired', () => {
    expect(targetForIntent(intent({ status: 'requires_capture' }))).toBe('authorized');
    expect(targetForIntent(intent({ status: 'canceled', cancellation_reason: 'automatic' }))).toBe('expired');
    expect(targetForIntent(intent({ status: 'canceled', cancellation_reason: 'abandoned' }))).toBe('expired');
    expect(targetForIntent(intent({ status: 'canceled', cancellation_reason: 'requested_by_customer' }))).toBe('canceled');
  });

  it('reads an uncaptured succeeded charge as an authorization with its capture window, and a captured one as paid with the captured sum', () => {
    const charge = { id: 'ch_1', payment_intent: 'pi_1', amount: AMOUNT, currency: 'usd', amount_refunded: 0, metadata: { order_id: ORDER_ID }, payment_method_details: { card: { capture_before: 1_900_000_000 } } };
    const authorized = readEvent({ type: 'charge.succeeded', created: 5, data: { object: { ...charge, captured: false, amount_captured: 0 } } } as unknown as Stripe.Event);
    expect(authorized?.fact).toMatchObject({ target: 'authorized', capture: { amountCapturable: AMOUNT, amountCaptured: null, captureBefore: 1_900_000_000 } });
    const captured = readEvent({ type: 'charge.captured', created: 6, data: { object: { ...charge, captured: true, amount_captured: 3000, amount_refunded: AMOUNT - 3000 } } } as unknown as Stripe.Event);
    expect(captured?.fact).toMatchObject({ target: 'paid', capture: { amountCapturable: 0, amountCaptured: 3000 } });
  });

  it('does not count a released authorization as refunded money', () => {
    // Partial capture of 3000: Stripe reports the released rest in amount_refunded.
    expect(refundedOfCaptured({ amount: AMOUNT, amount_captured: 3000, amount_refunded: AMOUNT - 3000, captured: true })).toBe(0);
    expect(refundedOfCaptured({ amount: AMOUNT, amount_captured: 3000, amount_refunded: AMOUNT - 3000 + 1000, captured: true })).toBe(1000);
    // A voided authorization: all of it released, nothing refunded.
    expect(refundedOfCaptured({ amount: AMOUNT, amount_captured: 0, amount_refunded: AMOUNT, captured: false })).toBe(0);
    expect(refundedOfCaptured({ amount: AMOUNT, amount_captured: AMOUNT, amount_refunded: 500, captured: true })).toBe(500);
  });

  it('makes a partially captured order refunded once the captured sum is back', () => {
    const h = held({ orderStatus: 'paid', amountCaptured: 3000 });
    expect(decide(h, { kind: 'refund', amountRefunded: 1000, created: 9 }).steps).toEqual(['partially_refunded']);
    expect(decide(h, { kind: 'refund', amountRefunded: 3000, created: 9 }).steps).toEqual(['refunded']);
  });

  it('moves authorized to paid on capture, and never back to authorized from a late event', () => {
    expect(decide(held({ orderStatus: 'pending_payment' }), pay('authorized', 5)).steps).toEqual(['authorized']);
    expect(decide(held({ orderStatus: 'authorized', lastEventCreated: 5 }), pay('paid', 6)).steps).toEqual(['paid']);
    expect(decide(held({ orderStatus: 'paid', lastEventCreated: 6 }), pay('authorized', 5))).toMatchObject({ outcome: 'stale', steps: [] });
    expect(decide(held({ orderStatus: 'expired', lastEventCreated: 6 }), pay('authorized', 5))).toMatchObject({ outcome: 'stale', steps: [] });
  });

  it('sends money taken after the order was canceled or expired to needs_review, listed as unexpected', () => {
    for (const closed of ['canceled', 'expired'] as const) {
      expect(decide(held({ orderStatus: closed }), pay('paid', 9))).toMatchObject({ outcome: 'needs_review', steps: ['needs_review'], unexpectedPayment: true });
    }
  });

  it("flags another PaymentIntent's success on the order whatever its status, and ignores anything short of success", () => {
    for (const status of ['pending_payment', 'paid', 'refunded', 'expired'] as const) {
      expect(decideForeign(held({ orderStatus: status }), pay('paid', 9) as never, 'pi_other')).toMatchObject({ outcome: 'needs_review', steps: ['needs_review'], unexpectedPayment: true });
    }
    expect(decideForeign(held({ orderStatus: 'needs_review' }), pay('paid', 9) as never, 'pi_other')).toMatchObject({ steps: [], unexpectedPayment: true });
    expect(decideForeign(held(), pay('payment_failed', 9) as never, 'pi_other')).toMatchObject({ outcome: 'noop', steps: [] });
  });
});

describe('dispute outcomes and refunds that fail', () => {
  it('returns a won dispute to the status the order had before, and ends a lost one in dispute_lost', () => {
    const opened = decide(held({ orderStatus: 'partially_refunded', amountRefunded: 1000 }), disputeFact(5));
    expect(opened).toMatchObject({ steps: ['disputed'], statusBeforeDispute: 'partially_refunded', dispute: { id: 'dp_1', status: 'needs_response' } });
    const during = held({ orderStatus: 'disputed', amountRefunded: 1000, statusBeforeDispute: 'partially_refunded', dispute: opened.dispute! });
    expect(decide(during, disputeFact(9, 'won'))).toMatchObject({ steps: ['partially_refunded'], dispute: { status: 'won' } });
    expect(decide(during, disputeFact(9, 'lost'))).toMatchObject({ steps: ['dispute_lost'], dispute: { status: 'lost' } });
  });

  it('keeps a closed outcome whatever arrives after it, and an older open status never replaces a newer one', () => {
    const won = held({ orderStatus: 'paid', statusBeforeDispute: 'paid', dispute: { id: 'dp_1', status: 'won', reason: 'fraudulent', amount: AMOUNT, evidenceDueBy: null, eventCreated: 9 } });
    // The created event delivered after the closing one: the order stays where the won dispute left it.
    expect(decide(won, disputeFact(5))).toMatchObject({ steps: [], outcome: 'noop' });
    const review = held({ orderStatus: 'disputed', statusBeforeDispute: 'paid', dispute: { id: 'dp_1', status: 'under_review', reason: 'fraudulent', amount: AMOUNT, evidenceDueBy: null, eventCreated: 7 } });
    expect(decide(review, disputeFact(5, 'needs_response')).dispute).toBeUndefined();
  });

  it('reaches the outcome directly when the opening was never seen: lost from paid, won leaves paid', () => {
    expect(decide(held({ orderStatus: 'paid' }), disputeFact(9, 'lost'))).toMatchObject({ steps: ['dispute_lost'], statusBeforeDispute: 'paid' });
    expect(decide(held({ orderStatus: 'paid' }), disputeFact(9, 'won'))).toMatchObject({ steps: [] });
    expect(decide(held({ orderStatus: 'pending_payment' }), disputeFact(9, 'won')).steps).toEqual(['paid']);
  });

  it('lowers the refunded sum when a refund fails, and the status with it', () => {
    expect(decide(held({ orderStatus: 'refunded', amountRefunded: AMOUNT }), { kind: 'refund', amountRefunded: 0, failed: AMOUNT, created: 9 })).toMatchObject({ amountRefunded: 0, steps: ['paid'] });
    expect(decide(held({ orderStatus: 'refunded', amountRefunded: AMOUNT }), { kind: 'refund', amountRefunded: 1000, failed: AMOUNT - 1000, created: 9 })).toMatchObject({ amountRefunded: 1000, steps: ['partially_refunded'] });
    // Without a failure an older, smaller total changes nothing.
    expect(decide(held({ orderStatus: 'refunded', amountRefunded: AMOUNT }), { kind: 'refund', amountRefunded: 1000, created: 2 })).toMatchObject({ amountRefunded: AMOUNT, steps: [] });
  });

  it('never lets a payment fact undo a refund or a dispute, even as the current PSP state', () => {
    for (const status of ['partially_refunded', 'refunded', 'disputed', 'dispute_lost'] as const) {
      expect(decide(held({ orderStatus: status, lastEventCreated: 1 }), pay('paid', 9, { authoritative: true })).steps).toEqual([]);
    }
  });

  it('keeps a refund status from going back: failed stays failed, succeeded never returns to pending', () => {
    expect(nextRefundStatus('failed', 'succeeded')).toBe('failed');
    expect(nextRefundStatus('succeeded', 'failed')).toBe('failed');
    expect(nextRefundStatus('succeeded', 'pending')).toBe('succeeded');
  });
});
