import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A client's Idempotency-Key for POST /orders, bound to a hash of the body it first came with. */
@Entity('idempotency_keys')
export class IdempotencyKey {
  @PrimaryColumn('text')
  key: string;

  @Column('text', { name: 'request_hash' })
  requestHash: string;

  @Column('uuid', { name: 'order_id' })
  orderId: string;

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;
}
