CREATE TABLE "task_changes" (
	"org_id" uuid NOT NULL,
	"task_id" uuid NOT NULL,
	"change_xid" "xid8" DEFAULT pg_current_xact_id() NOT NULL,
	CONSTRAINT "task_changes_org_id_task_id_pk" PRIMARY KEY("org_id","task_id")
);
--> statement-breakpoint
CREATE TABLE "task_search_stale" (
	"org_id" uuid NOT NULL,
	"task_id" uuid NOT NULL,
	CONSTRAINT "task_search_stale_org_id_task_id_pk" PRIMARY KEY("org_id","task_id")
);
--> statement-breakpoint
-- Every task's last change and the stale set move off the tasks row, with what they hold:
-- a pull cursor issued before this migration still sees exactly the same changes.
INSERT INTO "task_changes" ("org_id", "task_id", "change_xid") SELECT "org_id", "id", "change_xid" FROM "tasks";--> statement-breakpoint
INSERT INTO "task_search_stale" ("org_id", "task_id") SELECT "org_id", "id" FROM "tasks" WHERE "search_stale";--> statement-breakpoint
-- The commit statements write task_changes themselves (in the statement that changes the row).
DROP TRIGGER IF EXISTS tasks_touch_change_xid ON tasks;--> statement-breakpoint
DROP INDEX "tasks_search_stale_idx";--> statement-breakpoint
DROP INDEX "tasks_change_idx";--> statement-breakpoint
CREATE INDEX "task_changes_xid_idx" ON "task_changes" USING btree ("org_id","change_xid","task_id");--> statement-breakpoint
ALTER TABLE "tasks" DROP COLUMN "change_xid";--> statement-breakpoint
ALTER TABLE "tasks" DROP COLUMN "search_stale";--> statement-breakpoint
-- Room on each page for the next version of a row, so that a commit's update (no indexed
-- column changes in it) is a HOT update: no new index entry in any of the row's indexes.
ALTER TABLE "tasks" SET (fillfactor = 70);
