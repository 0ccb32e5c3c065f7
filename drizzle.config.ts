import { defineConfig } from 'drizzle-kit';
import { MODULES } from './src/modules/index.ts';

// One ordered stream of migrations, for PGlite and PostgreSQL alike, from the tables of every module
// that declares some (each in its own schema.ts), the platform's adapters (mail outbox, job queue)
// and the HTTP layer (idempotency keys).
export default defineConfig({
  dialect: 'postgresql',
  schema: [
    ...MODULES.filter((m) => m.tables).map((m) => `./src/modules/${m.name}/schema.ts`),
    './src/platform/mail/schema.ts',
    './src/platform/queue/schema.ts',
    './src/http/schema.ts',
  ],
  out: './db/migrations',
});
