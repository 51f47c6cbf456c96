import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../database/transformers';

/** The order's PaymentIntent as we last saw it at the PSP. */
@Entity('payments')
export class Payment {
  /** The PaymentIntent id, pi_… */
  @PrimaryColumn('text')
  id: string;

  @Column('uuid', { name: 'order_id', unique: true })
  orderId: string;

  /** Stripe's PaymentIntent status, verbatim. */
  @Column('text')
  status: string;

  @Column('integer')
  amount: number;

  @Column('integer', { name: 'amount_received', default: 0 })
  amountReceived: number;

  @Column('text')
  currency: string;

  @Column('text', { name: 'client_secret' })
  clientSecret: string;

  /** `created` (epoch seconds) of the newest PSP event applied: older events change nothing. */
  @Column('bigint', { name: 'last_event_created', default: 0, transformer: bigintAsNumber })
  lastEventCreated: number;

  @Column('text', { name: 'last_event_id', nullable: true })
  lastEventId: string | null;

  /** Set once a dispute is opened on the charge. */
  @Column('text', { name: 'dispute_id', nullable: true })
  disputeId: string | null;

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;

  /** Last time anything (an event or the reconciler) confirmed this payment's state. */
  @Column('timestamptz', { name: 'checked_at' })
  checkedAt: Date;
}
