-- Responses are stored turn by turn from now on: a row's input holds its own items, the earlier
-- turns being its previous response's. Every row already there holds its whole input; the default
-- says so for them, and goes so that each new row says which it is.
ALTER TABLE "ai_responses" ADD COLUMN "input_whole" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "ai_responses" ALTER COLUMN "input_whole" DROP DEFAULT;--> statement-breakpoint
CREATE INDEX "ai_responses_previous_idx" ON "ai_responses" USING btree ("previous_response_id") WHERE "ai_responses"."previous_response_id" is not null;
