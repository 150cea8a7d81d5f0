-- Attachments take part in pull like tasks and comments: their change_xid follows every update.
CREATE OR REPLACE FUNCTION tasksync_touch_change_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.change_xid := pg_current_xact_id();
  RETURN NEW;
END
$$;--> statement-breakpoint
DROP TRIGGER IF EXISTS attachments_touch_change_xid ON attachments;--> statement-breakpoint
CREATE TRIGGER attachments_touch_change_xid BEFORE UPDATE ON attachments FOR EACH ROW EXECUTE FUNCTION tasksync_touch_change_xid();
