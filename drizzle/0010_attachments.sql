CREATE TABLE "attachment_chunks" (
	"org_id" uuid NOT NULL,
	"attachment_id" uuid NOT NULL,
	"n" integer NOT NULL,
	"size" integer NOT NULL,
	"sha256" text NOT NULL,
	"etag" text,
	CONSTRAINT "attachment_chunks_org_id_attachment_id_n_pk" PRIMARY KEY("org_id","attachment_id","n")
);
--> statement-breakpoint
CREATE TABLE "attachment_history" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"org_id" uuid NOT NULL,
	"task_id" uuid NOT NULL,
	"rev" integer NOT NULL,
	"attachment_id" uuid NOT NULL,
	"action" text NOT NULL,
	"name" text NOT NULL,
	"size" bigint NOT NULL,
	"user_id" uuid NOT NULL,
	"device_id" uuid NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "attachments" (
	"org_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"task_id" uuid NOT NULL,
	"name" text NOT NULL,
	"content_type" text NOT NULL,
	"size" bigint NOT NULL,
	"sha256" text NOT NULL,
	"chunk_size" integer NOT NULL,
	"state" text DEFAULT 'uploading' NOT NULL,
	"upload_id" text,
	"thumbnail" text,
	"created_by" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone,
	"expires_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"change_xid" "xid8" DEFAULT pg_current_xact_id() NOT NULL,
	CONSTRAINT "attachments_org_id_id_pk" PRIMARY KEY("org_id","id")
);
--> statement-breakpoint
CREATE TABLE "org_storage" (
	"org_id" uuid PRIMARY KEY NOT NULL,
	"used_bytes" bigint DEFAULT 0 NOT NULL,
	"quota_bytes" bigint
);
--> statement-breakpoint
CREATE INDEX "attachment_history_task_idx" ON "attachment_history" USING btree ("org_id","task_id","rev");--> statement-breakpoint
CREATE INDEX "attachments_task_idx" ON "attachments" USING btree ("org_id","task_id","created_at");--> statement-breakpoint
CREATE INDEX "attachments_change_idx" ON "attachments" USING btree ("org_id","change_xid");--> statement-breakpoint
CREATE INDEX "attachments_expiry_idx" ON "attachments" USING btree ("expires_at") WHERE state = 'uploading';