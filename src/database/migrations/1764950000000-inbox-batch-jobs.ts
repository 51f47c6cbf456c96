import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The intake hands each batch of stored events to Bull as one job: the row
 * names that job (job_id; NULL means a job of its own, id = the event's id),
 * so the relay can tell a lost job from one still waiting without a separate
 * "queued" write per event. Rows marked 'queued' by earlier versions become
 * 'received': the relay finds their jobs by event id, as those versions named them.
 */
export class InboxBatchJobs1764950000000 implements MigrationInterface {
  name = 'InboxBatchJobs1764950000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE webhook_events ADD COLUMN job_id text`);
    await q.query(`UPDATE webhook_events SET status = 'received' WHERE status = 'queued'`);
    await q.query(`ALTER INDEX webhook_events_unqueued_idx RENAME TO webhook_events_unapplied_idx`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER INDEX webhook_events_unapplied_idx RENAME TO webhook_events_unqueued_idx`);
    await q.query(`ALTER TABLE webhook_events DROP COLUMN IF EXISTS job_id`);
  }
}
