CREATE TABLE "task_checkpoints" (
	"org_id" uuid NOT NULL,
	"task_id" uuid NOT NULL,
	"rev" integer NOT NULL,
	"content" jsonb NOT NULL,
	"clock" jsonb NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"updated_by" uuid NOT NULL,
	CONSTRAINT "task_checkpoints_org_id_task_id_rev_pk" PRIMARY KEY("org_id","task_id","rev")
);
--> statement-breakpoint
ALTER TABLE "organizations" ADD COLUMN "search_language" text DEFAULT 'simple' NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "search_language" "regconfig" DEFAULT 'simple'::regconfig NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "search" "tsvector" GENERATED ALWAYS AS (setweight(to_tsvector(search_language, replace(replace(coalesce(content->>'title', ''), '<', '&lt;'), '>', '&gt;')), 'A') || setweight(to_tsvector(search_language, coalesce(content->'tags', '[]'::jsonb)), 'B') || setweight(to_tsvector(search_language, replace(replace(coalesce(content->>'description', ''), '<', '&lt;'), '>', '&gt;')), 'C')) STORED NOT NULL;--> statement-breakpoint
CREATE INDEX "tasks_search_idx" ON "tasks" USING gin ("search");