-- A failed job's error as its owner may read it, and its code: null for an error not written for users, as for every row before.
ALTER TABLE "jobs" ADD COLUMN "public_error" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "error_code" text;