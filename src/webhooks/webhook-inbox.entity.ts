import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../database/transformers';

/**
 * received  stored, not yet known to be on the queue (the relay re-enqueues these)
 * queued    handed to Bull
 * processed applied (or found stale / a no-op) in the same transaction as the order change
 * ignored   unknown type or unknown object: recorded, not processed
 * dead      failed every attempt; visible and replayable through the admin API
 */
export type InboxStatus = 'received' | 'queued' | 'processed' | 'ignored' | 'dead';

/** Every PSP event we accepted, stored before we answer 2xx so none can be lost. */
@Entity('webhook_events')
export class WebhookInboxEvent {
  /** Stripe's event id, evt_…: the unique key that makes redelivery harmless. */
  @PrimaryColumn('text')
  id: string;

  @Column('text')
  type: string;

  /** The event exactly as received (its signature was checked on these bytes). */
  @Column('text')
  payload: string;

  /** `created` of the event at the PSP, epoch seconds. */
  @Column('bigint', { name: 'event_created', transformer: bigintAsNumber })
  eventCreated: number;

  /** 'webhook' or 'reconciler': how the event reached us. */
  @Column('text')
  source: string;

  @Column('text')
  status: InboxStatus;

  @Column('integer', { default: 0 })
  attempts: number;

  @Column('text', { name: 'last_error', nullable: true })
  lastError: string | null;

  /** What processing concluded: applied, stale, duplicate, unknown_type, unknown_object … */
  @Column('text', { nullable: true })
  outcome: string | null;

  @Column('timestamptz', { name: 'received_at' })
  receivedAt: Date;

  @Column('timestamptz', { name: 'processed_at', nullable: true })
  processedAt: Date | null;
}
