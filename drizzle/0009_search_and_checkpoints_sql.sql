-- A new task takes its organization's search language (the generated search
-- column is computed after BEFORE triggers, so it uses it at once).
CREATE OR REPLACE FUNCTION tasksync_task_search_language() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.search_language := coalesce((SELECT search_language FROM organizations WHERE id = NEW.org_id), 'simple')::regconfig;
  RETURN NEW;
END $$;--> statement-breakpoint
DROP TRIGGER IF EXISTS tasks_search_language ON tasks;--> statement-breakpoint
CREATE TRIGGER tasks_search_language BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION tasksync_task_search_language();
