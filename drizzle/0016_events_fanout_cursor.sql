-- Fan-out no longer marks each event (a second, non-HOT write of every row): a
-- cursor over (xid, seq) says how far it got. Rows already there get xid 1 when
-- they were fanned out and 2 when not (real transaction ids start at 3), and the
-- cursor starts after the fanned-out ones, so the others are fanned out next.
CREATE TABLE "event_fanout_cursor" (
	"id" integer PRIMARY KEY NOT NULL,
	"xid" "xid8" NOT NULL,
	"seq" bigint NOT NULL
);
--> statement-breakpoint
ALTER TABLE "events" ADD COLUMN "xid" "xid8";--> statement-breakpoint
UPDATE "events" SET "xid" = (CASE WHEN "fanned_out_at" IS NULL THEN '2' ELSE '1' END)::xid8;--> statement-breakpoint
INSERT INTO "event_fanout_cursor" ("id", "xid", "seq") SELECT 1, '1'::xid8, coalesce(max("seq"), 0) FROM "events" WHERE "fanned_out_at" IS NOT NULL;--> statement-breakpoint
ALTER TABLE "events" ALTER COLUMN "xid" SET DEFAULT pg_current_xact_id();--> statement-breakpoint
ALTER TABLE "events" ALTER COLUMN "xid" SET NOT NULL;--> statement-breakpoint
DROP INDEX "events_pending_idx";--> statement-breakpoint
DROP INDEX "webhook_deliveries_pending_idx";--> statement-breakpoint
-- Fan-out happens once per event (the cursor row is locked), so no delivery can be written twice.
DROP INDEX "webhook_deliveries_event_key";--> statement-breakpoint
CREATE INDEX "events_fanout_idx" ON "events" USING btree ("xid","seq");--> statement-breakpoint
ALTER TABLE "events" DROP COLUMN "fanned_out_at";--> statement-breakpoint
-- Room on each page for a delivery's lease updates to stay HOT (no index entries).
ALTER TABLE "webhook_deliveries" SET (fillfactor = 70);
