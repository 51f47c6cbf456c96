import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A Refund at the PSP, as we last saw it. */
@Entity('refunds')
export class Refund {
  /** re_… */
  @PrimaryColumn('text')
  id: string;

  @Column('uuid', { name: 'order_id' })
  orderId: string;

  @Column('text', { name: 'payment_intent_id' })
  paymentIntentId: string;

  @Column('integer')
  amount: number;

  /** Stripe's refund status: pending, requires_action, succeeded, failed, canceled. */
  @Column('text')
  status: string;

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt: Date;
}
