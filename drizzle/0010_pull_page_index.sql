DROP INDEX IF EXISTS "comments_change_idx";--> statement-breakpoint
DROP INDEX IF EXISTS "tasks_change_idx";--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "comments_change_idx" ON "comments" USING btree ("org_id","change_xid","id");--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "tasks_change_idx" ON "tasks" USING btree ("org_id","change_xid","id");