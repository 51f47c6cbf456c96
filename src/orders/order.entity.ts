import { Column, Entity, PrimaryColumn } from 'typeorm';
import { OrderStatus } from './order-status';

export interface OrderItem {
  sku: string;
  name: string;
  unitAmount: number;
  quantity: number;
}

@Entity('orders')
export class Order {
  /** A random UUID: order ids are unguessable because GET /orders/:id needs no auth. */
  @PrimaryColumn('uuid')
  id: string;

  @Column('text')
  status: OrderStatus;

  /** Minor units, computed by the server from the items. */
  @Column('integer')
  amount: number;

  @Column('text')
  currency: string;

  @Column('jsonb')
  items: OrderItem[];

  @Column('text', { name: 'customer_email' })
  customerEmail: string;

  /** The PSP's own total of refunded money; never incremented by us. */
  @Column('integer', { name: 'amount_refunded', default: 0 })
  amountRefunded: number;

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt: Date;
}
