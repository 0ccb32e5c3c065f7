-- A document's links are listed a page at a time in id order, and the daily purge reads only links that ended.
DROP INDEX "document_links_document_idx";--> statement-breakpoint
CREATE INDEX "document_links_revoked_idx" ON "document_links" USING btree ("revoked_at") WHERE "document_links"."revoked_at" is not null;--> statement-breakpoint
CREATE INDEX "document_links_expires_idx" ON "document_links" USING btree ("expires_at") WHERE "document_links"."expires_at" is not null;--> statement-breakpoint
CREATE INDEX "document_links_document_idx" ON "document_links" USING btree ("document_id","id");