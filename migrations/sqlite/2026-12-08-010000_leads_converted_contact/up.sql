-- A contact's timeline holds the status changes of the lead it was converted from.
CREATE INDEX leads_converted_contact ON leads (workspace_id, converted_contact_id)
    WHERE converted_contact_id IS NOT NULL;
