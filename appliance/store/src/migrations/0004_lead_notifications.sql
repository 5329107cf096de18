-- v4: staff notifications can point at a lead (a promising caller who did not book).
ALTER TABLE staff_notifications ADD COLUMN lead_id INTEGER REFERENCES leads(id) ON DELETE CASCADE;
