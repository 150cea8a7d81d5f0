DROP INDEX "comments_change_idx";--> statement-breakpoint
DROP INDEX "tasks_change_idx";--> statement-breakpoint
CREATE INDEX "comments_change_idx" ON "comments" USING btree ("org_id","change_xid","id");--> statement-breakpoint
CREATE INDEX "tasks_change_idx" ON "tasks" USING btree ("org_id","change_xid","id");