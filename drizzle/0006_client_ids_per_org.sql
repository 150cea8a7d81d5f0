-- clientIds are scoped to the organization (PROTOCOL.md section 3): the same UUID in another organization is another client.
ALTER TABLE "client_mutations" DROP CONSTRAINT IF EXISTS "client_mutations_client_id_seq_pk";--> statement-breakpoint
ALTER TABLE "clients" DROP CONSTRAINT IF EXISTS "clients_pkey";--> statement-breakpoint
ALTER TABLE "client_mutations" ADD CONSTRAINT "client_mutations_org_id_client_id_seq_pk" PRIMARY KEY("org_id","client_id","seq");--> statement-breakpoint
ALTER TABLE "clients" ADD CONSTRAINT "clients_org_id_client_id_pk" PRIMARY KEY("org_id","client_id");
