CREATE TABLE "ai_responses" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"api_key_id" uuid,
	"model" text NOT NULL,
	"status" text NOT NULL,
	"previous_response_id" text,
	"instructions" text,
	"input" jsonb NOT NULL,
	"output" jsonb NOT NULL,
	"response" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "ai_responses" ADD CONSTRAINT "ai_responses_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "ai_responses_user_idx" ON "ai_responses" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "ai_responses_created_idx" ON "ai_responses" USING btree ("created_at");