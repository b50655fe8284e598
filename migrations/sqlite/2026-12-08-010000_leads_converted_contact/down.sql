DROP INDEX leads_converted_contact;
