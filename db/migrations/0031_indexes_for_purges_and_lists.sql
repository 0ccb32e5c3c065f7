DROP INDEX "document_shares_user_idx";--> statement-breakpoint
CREATE INDEX "known_devices_last_seen_idx" ON "known_devices" USING btree ("last_seen_at");--> statement-breakpoint
CREATE INDEX "one_time_tokens_expires_idx" ON "one_time_tokens" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "sessions_expires_idx" ON "sessions" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "sessions_revoked_idx" ON "sessions" USING btree ("revoked_at") WHERE "sessions"."revoked_at" is not null;--> statement-breakpoint
CREATE INDEX "files_user_conversation_idx" ON "files" USING btree ("user_id","conversation_id","id") WHERE "files"."conversation_id" is not null;--> statement-breakpoint
CREATE INDEX "ai_job_results_created_idx" ON "ai_job_results" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "document_shares_user_document_idx" ON "document_shares" USING btree ("user_id","document_id");--> statement-breakpoint
CREATE INDEX "document_shares_document_created_idx" ON "document_shares" USING btree ("document_id","created_at","user_id");--> statement-breakpoint
CREATE INDEX "messages_user_files_idx" ON "messages" USING btree ("user_id") WHERE "messages"."content" @> '[{"type":"file"}]'::jsonb;--> statement-breakpoint
CREATE INDEX "jobs_completed_idx" ON "jobs" USING btree ("finished_at") WHERE state = 'completed';--> statement-breakpoint
CREATE INDEX "idempotency_keys_created_idx" ON "idempotency_keys" USING btree ("created_at");