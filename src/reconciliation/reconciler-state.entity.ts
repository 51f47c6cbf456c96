import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../database/transformers';

/** Where the reconciler got to in the PSP's Events API, kept across restarts. */
@Entity('reconciler_state')
export class ReconcilerState {
  @PrimaryColumn('text')
  name: string;

  /** `created` of the newest PSP event seen (epoch seconds); the next pass asks for created >= this. */
  @Column('bigint', { name: 'events_cursor_created', default: 0, transformer: bigintAsNumber })
  eventsCursorCreated: number;

  @Column('timestamptz', { name: 'last_run_at', nullable: true })
  lastRunAt: Date | null;

  @Column('text', { name: 'last_error', nullable: true })
  lastError: string | null;
}
