ALTER TABLE "client_mutations" ADD COLUMN "change_xid" "xid8" DEFAULT pg_current_xact_id() NOT NULL;--> statement-breakpoint
ALTER TABLE "sync_state" ADD COLUMN "value" jsonb;