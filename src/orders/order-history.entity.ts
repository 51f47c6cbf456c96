import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { OrderStatus } from './order-status';

/** One row per status change, written in the same transaction as the change. */
@Entity('order_status_history')
export class OrderHistoryEntry {
  @PrimaryGeneratedColumn('increment', { type: 'bigint' })
  id: string;

  @Column('uuid', { name: 'order_id' })
  orderId: string;

  @Column('text', { name: 'from_status' })
  from: OrderStatus;

  @Column('text', { name: 'to_status' })
  to: OrderStatus;

  @Column('timestamptz')
  at: Date;

  @Column('text')
  reason: string;

  /** The PSP event that caused the change; null for changes made by an API call. */
  @Column('text', { name: 'event_id', nullable: true })
  eventId: string | null;
}
