-- Rows of projects deleted before the foreign keys existed lose the id that names nothing.
UPDATE "files" SET "project_id" = NULL WHERE "project_id" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "projects" p WHERE p."id" = "files"."project_id");--> statement-breakpoint
UPDATE "documents" SET "project_id" = NULL WHERE "project_id" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "projects" p WHERE p."id" = "documents"."project_id");--> statement-breakpoint
UPDATE "knowledge_collections" SET "project_id" = NULL WHERE "project_id" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "projects" p WHERE p."id" = "knowledge_collections"."project_id");--> statement-breakpoint
ALTER TABLE "files" ADD CONSTRAINT "files_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "documents" ADD CONSTRAINT "documents_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "knowledge_collections" ADD CONSTRAINT "knowledge_collections_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "files_project_idx" ON "files" USING btree ("project_id") WHERE "files"."project_id" is not null;--> statement-breakpoint
CREATE INDEX "documents_project_idx" ON "documents" USING btree ("project_id") WHERE "documents"."project_id" is not null;--> statement-breakpoint
CREATE INDEX "knowledge_collections_project_idx" ON "knowledge_collections" USING btree ("project_id") WHERE "knowledge_collections"."project_id" is not null;