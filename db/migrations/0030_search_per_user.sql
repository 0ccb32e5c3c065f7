-- Search reads one user's matches, not every user's. The full-text GIN indexes over every user's rows made a
-- word's posting list the unit of work: a word rare for the user but common elsewhere read everyone's rows,
-- then dropped the other users'. With btree_gin a GIN index can lead with the user: (user_id, search_vector).
-- btree_gin ships with PostgreSQL (contrib) and is a trusted extension (a database owner may create it); the
-- embedded PGlite is given it (src/platform/db/pglite.ts). Where it cannot be created (a server without
-- contrib), the global indexes stay and search filters by user after them, as before: slower, the same results.
DO $$
BEGIN
  CREATE EXTENSION IF NOT EXISTS btree_gin;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'btree_gin is not available (%): full-text search keeps its indexes over every user''s rows', SQLERRM;
END $$;
--> statement-breakpoint
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gin') THEN
    CREATE INDEX IF NOT EXISTS "messages_user_search_idx" ON "messages" USING gin ("user_id","search_vector");
    CREATE INDEX IF NOT EXISTS "conversations_user_search_idx" ON "conversations" USING gin ("user_id","search_vector");
    CREATE INDEX IF NOT EXISTS "knowledge_chunks_user_search_idx" ON "knowledge_chunks" USING gin ("user_id","search_vector");
    DROP INDEX IF EXISTS "messages_search_idx";
    DROP INDEX IF EXISTS "conversations_search_idx";
    DROP INDEX IF EXISTS "knowledge_chunks_search_idx";
    -- The GIN index serves lookups of a user's passages as well; a btree by user only tempted the planner to
    -- read them all and test each one's tsvector (see knowledge/schema.ts).
    DROP INDEX IF EXISTS "knowledge_chunks_user_idx";
  END IF;
END $$;
--> statement-breakpoint
-- A user's messages newest first, the order search takes its candidates in, which no index over every user's
-- messages gives: where a word is common the planner walks these and stops at the bound; it can never walk
-- everyone's messages instead. It leads with user_id, as the index it replaces did (the foreign key, the
-- footprint report).
CREATE INDEX "messages_user_created_idx" ON "messages" USING btree ("user_id","created_at","id");--> statement-breakpoint
DROP INDEX "messages_user_idx";
