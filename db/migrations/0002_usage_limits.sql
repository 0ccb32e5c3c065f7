CREATE TABLE "api_requests_daily" (
	"day" date NOT NULL,
	"user_id" uuid,
	"method" text NOT NULL,
	"route" text NOT NULL,
	"requests" bigint NOT NULL,
	"bytes" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "api_requests_daily_key" UNIQUE NULLS NOT DISTINCT("day","user_id","method","route")
);
--> statement-breakpoint
CREATE TABLE "budgets" (
	"id" uuid PRIMARY KEY NOT NULL,
	"scope" text NOT NULL,
	"user_id" uuid,
	"subject_id" uuid,
	"period" text NOT NULL,
	"limit_micros" bigint,
	"limit_tokens" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "budgets_key" UNIQUE NULLS NOT DISTINCT("scope","user_id","subject_id","period")
);
--> statement-breakpoint
CREATE TABLE "usage_daily" (
	"day" date NOT NULL,
	"user_id" uuid NOT NULL,
	"api_key_id" uuid,
	"project_id" uuid,
	"provider" text NOT NULL,
	"model" text NOT NULL,
	"requests" integer NOT NULL,
	"failed" integer NOT NULL,
	"input_tokens" bigint NOT NULL,
	"output_tokens" bigint NOT NULL,
	"cached_tokens" bigint NOT NULL,
	"cost_micros" bigint NOT NULL,
	"unpriced_requests" integer NOT NULL,
	CONSTRAINT "usage_daily_key" UNIQUE NULLS NOT DISTINCT("day","user_id","api_key_id","project_id","provider","model")
);
--> statement-breakpoint
CREATE TABLE "usage_events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"occurred_at" timestamp with time zone NOT NULL,
	"user_id" uuid NOT NULL,
	"api_key_id" uuid,
	"project_id" uuid,
	"conversation_id" uuid,
	"message_id" uuid,
	"source" text NOT NULL,
	"provider" text NOT NULL,
	"model" text NOT NULL,
	"input_tokens" integer DEFAULT 0 NOT NULL,
	"output_tokens" integer DEFAULT 0 NOT NULL,
	"cached_tokens" integer DEFAULT 0 NOT NULL,
	"cost_micros" bigint,
	"latency_ms" integer NOT NULL,
	"ttft_ms" integer,
	"status" text NOT NULL,
	"prompt_hash" text,
	"attempts" jsonb DEFAULT '[]'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "abuse_flags" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"evidence" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"cleared_at" timestamp with time zone,
	"cleared_by" uuid
);
--> statement-breakpoint
CREATE TABLE "bans" (
	"id" uuid PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"subject" text NOT NULL,
	"reason" text NOT NULL,
	"violations" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"lifted_at" timestamp with time zone,
	"lifted_by" uuid
);
--> statement-breakpoint
CREATE INDEX "budgets_user_idx" ON "budgets" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "usage_daily_user_idx" ON "usage_daily" USING btree ("user_id","day");--> statement-breakpoint
CREATE INDEX "usage_events_user_time_idx" ON "usage_events" USING btree ("user_id","occurred_at");--> statement-breakpoint
CREATE INDEX "usage_events_time_idx" ON "usage_events" USING btree ("occurred_at");--> statement-breakpoint
CREATE INDEX "abuse_flags_user_idx" ON "abuse_flags" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE INDEX "bans_subject_idx" ON "bans" USING btree ("kind","subject","expires_at");