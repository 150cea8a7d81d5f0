-- The search vectors are no longer computed by each commit: a commit marks its row
-- search_stale, the search indexer (src/storage/search-index.ts) re-computes stale rows
-- in batches, and search computes a stale row's vectors from its content meanwhile.
ALTER TABLE "tasks" ALTER COLUMN "search" DROP EXPRESSION;--> statement-breakpoint
ALTER TABLE "tasks" ALTER COLUMN "search" SET DEFAULT ''::tsvector;--> statement-breakpoint
ALTER TABLE "tasks" ALTER COLUMN "search_head" DROP EXPRESSION;--> statement-breakpoint
ALTER TABLE "tasks" ALTER COLUMN "search_head" SET DEFAULT ''::tsvector;--> statement-breakpoint
-- The vectors of the rows already there were computed with their content: not stale.
ALTER TABLE "tasks" ADD COLUMN "search_stale" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ALTER COLUMN "search_stale" SET DEFAULT true;--> statement-breakpoint
CREATE INDEX "tasks_search_stale_idx" ON "tasks" USING btree ("org_id") WHERE search_stale;--> statement-breakpoint
-- Re-indexing a row (it clears search_stale) changes nothing a pull returns: it keeps the row's change_xid.
DROP TRIGGER IF EXISTS tasks_touch_change_xid ON tasks;--> statement-breakpoint
CREATE TRIGGER tasks_touch_change_xid BEFORE UPDATE ON tasks FOR EACH ROW WHEN (NEW.search_stale OR NOT OLD.search_stale) EXECUTE FUNCTION tasksync_touch_change_xid();
