-- The admin user search (GET /v1/admin/users?email=) is a substring match, ILIKE '%term%': without an index of
-- trigrams it reads every user. pg_trgm ships with PostgreSQL (contrib) and is a trusted extension (a database
-- owner may create it); where it cannot be created (the embedded PGlite, which loads no extension it is not given,
-- or a server without contrib), the search keeps scanning and nothing else changes.
DO $$
BEGIN
  CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'pg_trgm is not available (%): the admin user search scans every user', SQLERRM;
END $$;
--> statement-breakpoint
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
    CREATE INDEX IF NOT EXISTS users_email_trgm_idx ON users USING gin (email gin_trgm_ops);
  END IF;
END $$;
