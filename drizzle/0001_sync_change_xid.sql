CREATE TABLE "sync_state" (
	"key" text PRIMARY KEY NOT NULL,
	"horizon_xid" "xid8",
	"horizon_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "comments" ADD COLUMN "change_xid" "xid8" DEFAULT pg_current_xact_id() NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "change_xid" "xid8" DEFAULT pg_current_xact_id() NOT NULL;--> statement-breakpoint
ALTER TABLE "tombstones" ADD COLUMN "change_xid" "xid8" DEFAULT pg_current_xact_id() NOT NULL;--> statement-breakpoint
CREATE INDEX "comments_change_idx" ON "comments" USING btree ("org_id","change_xid");--> statement-breakpoint
CREATE INDEX "tasks_change_idx" ON "tasks" USING btree ("org_id","change_xid");--> statement-breakpoint
CREATE INDEX "tombstones_change_idx" ON "tombstones" USING btree ("org_id","change_xid");--> statement-breakpoint
CREATE OR REPLACE FUNCTION tasksync_touch_change_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.change_xid := pg_current_xact_id();
  RETURN NEW;
END
$$;--> statement-breakpoint
CREATE TRIGGER tasks_touch_change_xid BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION tasksync_touch_change_xid();--> statement-breakpoint
CREATE TRIGGER comments_touch_change_xid BEFORE UPDATE ON comments FOR EACH ROW EXECUTE FUNCTION tasksync_touch_change_xid();--> statement-breakpoint
CREATE TRIGGER tombstones_touch_change_xid BEFORE UPDATE ON tombstones FOR EACH ROW EXECUTE FUNCTION tasksync_touch_change_xid();
