CREATE INDEX "bans_active_idx" ON "bans" USING btree ("expires_at") WHERE "bans"."lifted_at" is null;--> statement-breakpoint
CREATE INDEX "abuse_flags_active_idx" ON "abuse_flags" USING btree ("created_at") WHERE "abuse_flags"."cleared_at" is null;--> statement-breakpoint
CREATE INDEX "document_attachments_added_by_idx" ON "document_attachments" USING btree ("added_by");--> statement-breakpoint
CREATE INDEX "document_comments_author_idx" ON "document_comments" USING btree ("author_id");--> statement-breakpoint
CREATE INDEX "document_presence_user_idx" ON "document_presence" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "document_versions_author_idx" ON "document_versions" USING btree ("author_id");--> statement-breakpoint
CREATE INDEX "knowledge_conversation_collections_collection_idx" ON "knowledge_conversation_collections" USING btree ("collection_id");--> statement-breakpoint
CREATE INDEX "knowledge_conversation_collections_user_idx" ON "knowledge_conversation_collections" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "conversations_list_idx" ON "conversations" USING btree ("user_id","archived","pinned","updated_at","id");--> statement-breakpoint
CREATE INDEX "message_feedback_user_idx" ON "message_feedback" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "messages_streaming_idx" ON "messages" USING btree ("created_at") WHERE "messages"."status" = 'streaming';--> statement-breakpoint
CREATE INDEX "notification_deliveries_external_idx" ON "notification_deliveries" USING btree ("channel","external_id") WHERE "notification_deliveries"."external_id" is not null;