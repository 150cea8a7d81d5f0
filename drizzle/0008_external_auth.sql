DROP INDEX IF EXISTS "users_email_key";--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN IF NOT EXISTS "device_key" text;--> statement-breakpoint
ALTER TABLE "organizations" ADD COLUMN IF NOT EXISTS "issuer" text;--> statement-breakpoint
ALTER TABLE "organizations" ADD COLUMN IF NOT EXISTS "external_id" text;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN IF NOT EXISTS "issuer" text;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN IF NOT EXISTS "subject" text;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN IF NOT EXISTS "profile_iat" bigint;--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "devices_key_key" ON "devices" USING btree ("org_id","user_id","device_key");--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "organizations_external_key" ON "organizations" USING btree ("issuer","external_id");--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "users_external_key" ON "users" USING btree ("org_id","issuer","subject");--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "users_email_key" ON "users" USING btree (lower("email")) WHERE "users"."issuer" is null;