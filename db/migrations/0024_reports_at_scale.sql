CREATE TABLE "api_requests_daily_routes" (
	"day" date NOT NULL,
	"method" text NOT NULL,
	"route" text NOT NULL,
	"requests" bigint NOT NULL,
	"bytes_in" bigint DEFAULT 0 NOT NULL,
	"bytes_out" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "api_requests_daily_routes_day_method_route_pk" PRIMARY KEY("day","method","route")
);
--> statement-breakpoint
CREATE TABLE "storage_by_user" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"bytes" bigint NOT NULL,
	"sources" jsonb NOT NULL,
	"computed_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "usage_daily_models" (
	"day" date NOT NULL,
	"provider" text NOT NULL,
	"model" text NOT NULL,
	"requests" bigint NOT NULL,
	"failed" bigint NOT NULL,
	"input_tokens" bigint NOT NULL,
	"output_tokens" bigint NOT NULL,
	"cached_tokens" bigint NOT NULL,
	"cost_micros" bigint NOT NULL,
	"unpriced_requests" bigint NOT NULL,
	CONSTRAINT "usage_daily_models_day_provider_model_pk" PRIMARY KEY("day","provider","model")
);
--> statement-breakpoint
CREATE TABLE "usage_refreshes" (
	"name" text PRIMARY KEY NOT NULL,
	"refreshed_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "storage_by_user_bytes_idx" ON "storage_by_user" USING btree ("bytes" DESC NULLS LAST,"user_id");--> statement-breakpoint
CREATE INDEX "users_role_idx" ON "users" USING btree ("role","id");--> statement-breakpoint
CREATE INDEX "api_requests_daily_user_idx" ON "api_requests_daily" USING btree ("user_id","day");--> statement-breakpoint
CREATE INDEX "usage_daily_project_idx" ON "usage_daily" USING btree ("project_id","day");--> statement-breakpoint
CREATE INDEX "usage_daily_api_key_idx" ON "usage_daily" USING btree ("api_key_id","day");--> statement-breakpoint
-- The days already rolled up, summed per model for the admin reports across users.
INSERT INTO "usage_daily_models" ("day", "provider", "model", "requests", "failed", "input_tokens", "output_tokens", "cached_tokens", "cost_micros", "unpriced_requests")
SELECT "day", "provider", "model", sum("requests"), sum("failed"), sum("input_tokens"), sum("output_tokens"), sum("cached_tokens"), sum("cost_micros"), sum("unpriced_requests")
  FROM "usage_daily" GROUP BY "day", "provider", "model";--> statement-breakpoint
-- The request counts so far, summed per route for the admin request reports across users.
INSERT INTO "api_requests_daily_routes" ("day", "method", "route", "requests", "bytes_in", "bytes_out")
SELECT "day", "method", "route", sum("requests"), sum("bytes_in"), sum("bytes_out")
  FROM "api_requests_daily" GROUP BY "day", "method", "route";
