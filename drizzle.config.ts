import { defineConfig } from 'drizzle-kit';

// Each module declares its tables in its own schema.ts (and lists them in its index.ts);
// the platform's adapters (mail outbox, job queue) and the HTTP layer (idempotency keys) have theirs.
// One ordered stream of migrations is generated from all of them, for PGlite and PostgreSQL alike.
export default defineConfig({
  dialect: 'postgresql',
  schema: ['./src/modules/*/schema.ts', './src/platform/*/schema.ts', './src/http/schema.ts'],
  out: './db/migrations',
});
