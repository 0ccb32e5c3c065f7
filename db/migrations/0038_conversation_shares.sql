-- Conversations shared by link: a read-only snapshot up to a message, only the token's hash kept.
CREATE TABLE "conversation_shares" (
	"id" uuid PRIMARY KEY NOT NULL,
	"conversation_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"token_hash" text NOT NULL,
	"last4" text NOT NULL,
	"leaf_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "conversation_shares" ADD CONSTRAINT "conversation_shares_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "conversation_shares" ADD CONSTRAINT "conversation_shares_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "conversation_shares" ADD CONSTRAINT "conversation_shares_leaf_id_messages_id_fk" FOREIGN KEY ("leaf_id") REFERENCES "public"."messages"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "conversation_shares_token_key" ON "conversation_shares" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "conversation_shares_conversation_idx" ON "conversation_shares" USING btree ("conversation_id","id");--> statement-breakpoint
CREATE INDEX "conversation_shares_user_idx" ON "conversation_shares" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "conversation_shares_leaf_idx" ON "conversation_shares" USING btree ("leaf_id");--> statement-breakpoint
CREATE INDEX "conversation_shares_revoked_idx" ON "conversation_shares" USING btree ("revoked_at") WHERE "conversation_shares"."revoked_at" is not null;--> statement-breakpoint
CREATE INDEX "conversation_shares_expires_idx" ON "conversation_shares" USING btree ("expires_at") WHERE "conversation_shares"."expires_at" is not null;