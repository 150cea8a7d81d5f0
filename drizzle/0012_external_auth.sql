DROP INDEX "users_email_key";--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN "device_key" text;--> statement-breakpoint
ALTER TABLE "organizations" ADD COLUMN "issuer" text;--> statement-breakpoint
ALTER TABLE "organizations" ADD COLUMN "external_id" text;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "issuer" text;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "subject" text;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "profile_iat" bigint;--> statement-breakpoint
CREATE UNIQUE INDEX "devices_key_key" ON "devices" USING btree ("org_id","user_id","device_key");--> statement-breakpoint
CREATE UNIQUE INDEX "organizations_external_key" ON "organizations" USING btree ("issuer","external_id");--> statement-breakpoint
CREATE UNIQUE INDEX "users_external_key" ON "users" USING btree ("org_id","issuer","subject");--> statement-breakpoint
CREATE UNIQUE INDEX "users_email_key" ON "users" USING btree (lower("email")) WHERE "users"."issuer" is null;