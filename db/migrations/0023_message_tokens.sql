DROP INDEX "messages_parent_idx";--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "tokens" integer;--> statement-breakpoint
CREATE INDEX "messages_roots_idx" ON "messages" USING btree ("conversation_id") WHERE "messages"."parent_id" is null;--> statement-breakpoint
CREATE INDEX "messages_parent_idx" ON "messages" USING btree ("parent_id","conversation_id");