import Stripe from 'stripe';
import { MockPsp } from '../../src/mock-psp';
import { eventsFor, mockSdk } from './support';

/**
 * Disputes that are answered and closed, and refunds that fail after they
 * succeeded, as Stripe's test mode plays them, through the official SDK.
 */
describe('Mock PSP: dispute outcomes and late refund failures', () => {
  let mock: MockPsp;
  let stripe: Stripe;

  beforeAll(async () => {
    mock = await MockPsp.start({ port: 0, timeScale: 0.01 });
    stripe = mockSdk(mock);
  });
  afterAll(() => mock.stop());

  /** Pays with a dispute test card and returns the dispute, listed right after the payment as the CLI's fixtures do. */
  async function disputedPayment(paymentMethod = 'pm_card_createDispute'): Promise<{ pi: Stripe.PaymentIntent; dispute: Stripe.Dispute }> {
    const pi = await stripe.paymentIntents.create({ amount: 4200, currency: 'usd', payment_method: paymentMethod, confirm: true });
    const listed = await stripe.disputes.list({ payment_intent: pi.id });
    expect(listed.data).toHaveLength(1);
    return { pi, dispute: listed.data[0]! };
  }

  const typesOf = (disputeId: string) => mock.events().filter((e) => (e.data.object as { id?: string }).id === disputeId).map((e) => e.type);

  describe('disputes', () => {
    it('a dispute can be listed right after the payment: needs_response, reason, amount, an evidence deadline, funds withdrawn', async () => {
      const before = Math.floor(Date.now() / 1000);
      const { pi, dispute } = await disputedPayment();
      expect(dispute).toMatchObject({ object: 'dispute', status: 'needs_response', reason: 'fraudulent', amount: 4200, currency: 'usd', charge: pi.latest_charge, payment_intent: pi.id });
      expect(dispute.evidence_details.due_by).toBeGreaterThanOrEqual(before + 7 * 86400);
      expect(dispute.evidence_details).toMatchObject({ has_evidence: false, submission_count: 0, past_due: false });
      expect(dispute.evidence.uncategorized_text).toBeNull();
      expect(dispute.balance_transactions.map((t) => t.amount)).toEqual([-4200]);
      expect(typesOf(dispute.id)).toEqual(['charge.dispute.created', 'charge.dispute.funds_withdrawn']);
      // Opened once: the scheduled opening that the list brought forward does not open a second one.
      await mock.idle();
      expect((await stripe.disputes.list({ payment_intent: pi.id })).data).toHaveLength(1);
      expect(typesOf(dispute.id)).toEqual(['charge.dispute.created', 'charge.dispute.funds_withdrawn']);
    });

    it('pm_card_createDisputeProductNotReceived opens a dispute with reason product_not_received', async () => {
      const { dispute } = await disputedPayment('pm_card_createDisputeProductNotReceived');
      expect(dispute).toMatchObject({ status: 'needs_response', reason: 'product_not_received' });
    });

    it('winning_evidence: under_review at once, then won, with dispute.updated, dispute.closed and funds_reinstated', async () => {
      const { dispute } = await disputedPayment();
      const submitted = await stripe.disputes.update(dispute.id, { evidence: { uncategorized_text: 'Tracking shows delivery. winning_evidence', customer_name: 'Ada' } });
      expect(submitted.status).toBe('under_review');
      expect(submitted.evidence).toMatchObject({ uncategorized_text: 'Tracking shows delivery. winning_evidence', customer_name: 'Ada' });
      expect(submitted.evidence_details).toMatchObject({ has_evidence: true, submission_count: 1 });
      const updated = mock.events().find((e) => e.type === 'charge.dispute.updated' && (e.data.object as Stripe.Dispute).id === dispute.id)!;
      expect(updated.data.previous_attributes).toMatchObject({ status: 'needs_response' });
      await mock.idle();
      const closed = await stripe.disputes.retrieve(dispute.id);
      expect(closed.status).toBe('won');
      expect(closed.balance_transactions.map((t) => t.amount)).toEqual([-4200, 4200]);
      expect(typesOf(dispute.id)).toEqual(['charge.dispute.created', 'charge.dispute.funds_withdrawn', 'charge.dispute.updated', 'charge.dispute.closed', 'charge.dispute.funds_reinstated']);
      const closedEvent = mock.events().find((e) => e.type === 'charge.dispute.closed' && (e.data.object as Stripe.Dispute).id === dispute.id)!;
      expect(closedEvent.data.object).toMatchObject({ status: 'won' });
      expect(closedEvent.data.previous_attributes).toEqual({ status: 'under_review' });
      expect(closedEvent.request).toEqual({ id: null, idempotency_key: null });
    });

    it('losing_evidence: lost, no funds reinstated; a closed dispute refuses further updates', async () => {
      const { dispute } = await disputedPayment();
      await stripe.disputes.update(dispute.id, { evidence: { uncategorized_text: 'losing_evidence' } });
      await mock.idle();
      expect((await stripe.disputes.retrieve(dispute.id)).status).toBe('lost');
      expect(typesOf(dispute.id)).toEqual(['charge.dispute.created', 'charge.dispute.funds_withdrawn', 'charge.dispute.updated', 'charge.dispute.closed']);
      await expect(stripe.disputes.update(dispute.id, { metadata: { a: 'b' } })).rejects.toMatchObject({ statusCode: 400, message: expect.stringContaining('already closed') });
      await expect(stripe.disputes.close(dispute.id)).rejects.toMatchObject({ statusCode: 400 });
    });

    it('submit=false stages evidence without submitting; submit=true later submits it; evidence under review is locked', async () => {
      const { dispute } = await disputedPayment();
      const staged = await stripe.disputes.update(dispute.id, { evidence: { uncategorized_text: 'winning_evidence' }, submit: false });
      expect(staged).toMatchObject({ status: 'needs_response', evidence_details: { has_evidence: true, submission_count: 0 } });
      await mock.idle();
      expect((await stripe.disputes.retrieve(dispute.id)).status).toBe('needs_response');
      const submitted = await stripe.disputes.update(dispute.id, { submit: true });
      expect(submitted).toMatchObject({ status: 'under_review', evidence_details: { submission_count: 1 } });
      await expect(stripe.disputes.update(dispute.id, { evidence: { customer_name: 'Late' } })).rejects.toMatchObject({ statusCode: 400, param: 'evidence' });
      await mock.idle();
      expect((await stripe.disputes.retrieve(dispute.id)).status).toBe('won');
      expect(typesOf(dispute.id).filter((t) => t === 'charge.dispute.updated')).toHaveLength(2);
    });

    it('evidence without the test words stays under review', async () => {
      const { dispute } = await disputedPayment();
      await stripe.disputes.update(dispute.id, { evidence: { product_description: 'A teapot' } });
      await mock.idle();
      expect((await stripe.disputes.retrieve(dispute.id)).status).toBe('under_review');
    });

    it('close accepts the dispute: lost, with charge.dispute.closed; an inquiry closes as warning_closed', async () => {
      const { dispute } = await disputedPayment();
      const closed = await stripe.disputes.close(dispute.id);
      expect(closed.status).toBe('lost');
      expect(typesOf(dispute.id)).toEqual(['charge.dispute.created', 'charge.dispute.funds_withdrawn', 'charge.dispute.closed']);

      const inquiry = (await disputedPayment('pm_card_createDisputeInquiry')).dispute;
      expect(inquiry.status).toBe('warning_needs_response');
      expect((await stripe.disputes.close(inquiry.id)).status).toBe('warning_closed');
      // An inquiry moves no money.
      expect(typesOf(inquiry.id)).toEqual(['charge.dispute.created', 'charge.dispute.closed']);
    });

    it('an inquiry answered with evidence goes to warning_under_review and then closes', async () => {
      const { dispute } = await disputedPayment('pm_card_createDisputeInquiry');
      expect((await stripe.disputes.update(dispute.id, { evidence: { uncategorized_text: 'winning_evidence' } })).status).toBe('warning_under_review');
      await mock.idle();
      expect((await stripe.disputes.retrieve(dispute.id)).status).toBe('warning_closed');
    });

    it('a metadata update emits charge.dispute.updated with the previous metadata', async () => {
      const { dispute } = await disputedPayment('pm_card_createDisputeInquiry');
      const updated = await stripe.disputes.update(dispute.id, { metadata: { foo: 'bar' } });
      expect(updated).toMatchObject({ metadata: { foo: 'bar' }, status: 'warning_needs_response' });
      const event = mock.events().find((e) => e.type === 'charge.dispute.updated' && (e.data.object as Stripe.Dispute).id === dispute.id)!;
      expect(event.data.previous_attributes).toEqual({ metadata: {} });
    });

    it('refuses unknown evidence fields and unknown disputes', async () => {
      const { dispute } = await disputedPayment();
      await expect(stripe.disputes.update(dispute.id, { evidence: { favourite_colour: 'red' } as Stripe.DisputeUpdateParams.Evidence })).rejects.toMatchObject({ statusCode: 400, param: 'evidence[favourite_colour]' });
      await expect(stripe.disputes.close('dp_missing')).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' });
    });
  });

  describe('refunds that fail later (pm_card_refundFail)', () => {
    it('the refund starts succeeded, then turns failed with failure_reason; the charge counts it unrefunded again', async () => {
      const pi = await stripe.paymentIntents.create({ amount: 3000, currency: 'usd', payment_method: 'pm_card_refundFail', confirm: true });
      expect(pi.status).toBe('succeeded');
      const refund = await stripe.refunds.create({ payment_intent: pi.id, amount: 1000 });
      expect(refund.status).toBe('succeeded');
      expect((await stripe.charges.retrieve(pi.latest_charge as string)).amount_refunded).toBe(1000);

      await mock.idle();
      const failed = await stripe.refunds.retrieve(refund.id);
      expect(failed).toMatchObject({ status: 'failed', failure_reason: 'expired_or_canceled_card', amount: 1000 });
      expect(failed.failure_balance_transaction).toMatch(/^txn_/);
      const charge = await stripe.charges.retrieve(pi.latest_charge as string);
      expect(charge).toMatchObject({ amount_refunded: 0, refunded: false });

      const refundEvents = mock.events().filter((e) => (e.data.object as { id?: string }).id === refund.id);
      expect(refundEvents.map((e) => e.type)).toEqual(['refund.created', 'refund.updated', 'charge.refund.updated', 'refund.failed']);
      for (const event of refundEvents.slice(1)) {
        expect(event.data.object).toMatchObject({ status: 'failed', failure_reason: 'expired_or_canceled_card' });
        expect(event.data.previous_attributes).toMatchObject({ status: 'succeeded' });
      }
      // The money is back with the merchant, so it can be refunded again.
      expect((await stripe.refunds.create({ payment_intent: pi.id })).amount).toBe(3000);
    });

    it('card number 4000000000005126 behaves the same', async () => {
      const pm = await stripe.paymentMethods.create({ type: 'card', card: { number: '4000000000005126', exp_month: 12, exp_year: 2035 } });
      expect(pm.card?.last4).toBe('5126');
      const pi = await stripe.paymentIntents.create({ amount: 1500, currency: 'eur', payment_method: pm.id, confirm: true });
      const refund = await stripe.refunds.create({ payment_intent: pi.id });
      await mock.idle();
      expect((await stripe.refunds.retrieve(refund.id)).status).toBe('failed');
      expect((await stripe.charges.retrieve(pi.latest_charge as string)).amount_refunded).toBe(0);
    });

    it('a refund with pm_card_visa never fails', async () => {
      const pi = await stripe.paymentIntents.create({ amount: 1500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
      const refund = await stripe.refunds.create({ payment_intent: pi.id });
      await mock.idle();
      expect((await stripe.refunds.retrieve(refund.id)).status).toBe('succeeded');
      expect(eventsFor(mock, refund.id).map((e) => e.type)).toEqual(['refund.created']);
    });

    it('updating a refund\'s metadata emits refund.updated and charge.refund.updated', async () => {
      const pi = await stripe.paymentIntents.create({ amount: 1500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
      const refund = await stripe.refunds.create({ payment_intent: pi.id });
      const updated = await stripe.refunds.update(refund.id, { metadata: { order_id: '6735' } });
      expect(updated.metadata).toEqual({ order_id: '6735' });
      const events = eventsFor(mock, refund.id).filter((e) => e.type !== 'refund.created');
      expect(events.map((e) => e.type)).toEqual(['refund.updated', 'charge.refund.updated']);
      expect(events[0]!.data.previous_attributes).toEqual({ metadata: {} });
      await expect(stripe.refunds.update(refund.id, { amount: 5 } as Stripe.RefundUpdateParams)).rejects.toMatchObject({ statusCode: 400, param: 'amount' });
    });
  });
});
