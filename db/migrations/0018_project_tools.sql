ALTER TABLE "projects" ADD COLUMN "tool_approvals" text[] DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "max_tool_steps" integer;--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "sandbox_timeout_ms" integer;--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "sandbox_memory_mb" integer;