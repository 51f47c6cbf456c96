import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { MIGRATIONS } from '../../src/database/database.module';
import { createTestDatabase } from '../support/services';

/** Everything the schema consists of in `public`, one sorted line per object, so two states compare as text. */
async function schemaOf(db: Client): Promise<string[]> {
  const { rows } = await db.query<{ line: string }>(`
    SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') AS line
      FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typnamespace = 'public'::regnamespace AND typtype IN ('e', 'd', 'c') AND typrelid = 0
    UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    UNION ALL SELECT 'sequence ' || sequencename FROM pg_sequences WHERE schemaname = 'public'
    UNION ALL SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal
    ORDER BY 1`);
  return rows.map((r) => r.line);
}

describe('migrations', () => {
  let database: { url: string; drop: () => Promise<void> };
  let source: DataSource;
  let db: Client;

  beforeAll(async () => {
    database = await createTestDatabase();
    // No entities, as in the app (database.module.ts): TypeORM only runs the migrations.
    source = new DataSource({ type: 'postgres', url: database.url, entities: [], migrations: MIGRATIONS, migrationsTransactionMode: 'each' });
    await source.initialize();
    db = new Client({ connectionString: database.url });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await source?.destroy();
    await database?.drop();
  });

  it('apply all, revert all (each down()), apply again: the same schema, and nothing left between', async () => {
    // TypeORM's own bookkeeping table (`migrations`, its sequence, key and index) is the one thing no migration owns.
    const ours = (lines: string[]) => lines.filter((l) => !l.includes('migrations'));

    const applied = await source.runMigrations();
    expect(applied.map((m) => m.name)).toEqual(MIGRATIONS.map((m) => m.name));
    const first = await schemaOf(db);
    expect(first.some((l) => l.startsWith('column orders.'))).toBe(true);
    expect(first.some((l) => l.startsWith('column webhook_events.'))).toBe(true);

    for (let i = 0; i < MIGRATIONS.length; i++) await source.undoLastMigration();
    expect(ours(await schemaOf(db))).toEqual([]);
    expect((await db.query(`SELECT count(*) AS n FROM migrations`)).rows[0].n).toBe('0');

    const again = await source.runMigrations();
    expect(again.map((m) => m.name)).toEqual(MIGRATIONS.map((m) => m.name));
    expect(await schemaOf(db)).toEqual(first);
  });
});
