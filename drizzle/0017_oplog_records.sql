-- A committed op's (clientId, seq) record and its history entry live on its op-log row:
-- a commit writes one row (and its index entries) instead of three. client_mutations keeps
-- the records without an op-log row (comments, no-op acks); task_history the entries
-- without one; housekeeping moves a row's record and entry there before trimming it.
DROP INDEX "task_ops_committed_idx";--> statement-breakpoint
ALTER TABLE "task_ops" ADD COLUMN "digest" text;--> statement-breakpoint
ALTER TABLE "task_ops" ADD COLUMN "changes" jsonb;--> statement-breakpoint
ALTER TABLE "task_ops" ADD COLUMN "change_xid" "xid8" DEFAULT pg_current_xact_id() NOT NULL;--> statement-breakpoint
-- Backfill: the records of ops and creates still in the op log move onto their rows (their
-- committing transaction included, for pull's lastSeq), and so do their history entries.
UPDATE "task_ops" o SET "digest" = m."digest", "change_xid" = m."change_xid" FROM "client_mutations" m
  WHERE m."org_id" = o."org_id" AND m."client_id" = o."client_id" AND m."seq" = o."seq" AND m."kind" IN ('op', 'create');--> statement-breakpoint
DELETE FROM "client_mutations" m USING "task_ops" o
  WHERE m."org_id" = o."org_id" AND m."client_id" = o."client_id" AND m."seq" = o."seq" AND m."kind" IN ('op', 'create');--> statement-breakpoint
UPDATE "task_ops" o SET "changes" = h."changes" FROM "task_history" h
  WHERE h."org_id" = o."org_id" AND h."task_id" = o."task_id" AND h."rev" = o."rev";--> statement-breakpoint
DELETE FROM "task_history" h USING "task_ops" o
  WHERE h."org_id" = o."org_id" AND h."task_id" = o."task_id" AND h."rev" = o."rev" AND o."changes" IS NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "task_ops_client_seq_key" ON "task_ops" USING btree ("org_id","client_id","seq") WHERE client_id is not null;--> statement-breakpoint
CREATE INDEX "task_ops_org_at_idx" ON "task_ops" USING btree ("org_id","committed_at");
