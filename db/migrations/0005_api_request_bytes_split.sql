-- Request and response bytes, counted apart from now on. The old column held both
-- (request plus response body); it becomes bytes_out with bytes_in 0, so in + out
-- stays the whole traffic of every older row.
ALTER TABLE "api_requests_daily" RENAME COLUMN "bytes" TO "bytes_out";--> statement-breakpoint
ALTER TABLE "api_requests_daily" ADD COLUMN "bytes_in" bigint DEFAULT 0 NOT NULL;
