CREATE TABLE "safety_rules" (
	"project_id" uuid PRIMARY KEY NOT NULL,
	"blocked_terms" text[] DEFAULT '{}' NOT NULL,
	"patterns" text[] DEFAULT '{}' NOT NULL,
	"max_input_chars" integer,
	"moderation" jsonb DEFAULT '{"categories":null,"thresholds":{}}'::jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_by" uuid
);
--> statement-breakpoint
ALTER TABLE "safety_rules" ADD CONSTRAINT "safety_rules_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;