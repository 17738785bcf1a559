-- Drop indexes made redundant by the sort keys (v8): fewer index updates per write.
DROP INDEX cases_state_due;
DROP INDEX cases_subdistrict;
DROP INDEX cases_created_id;
DROP INDEX cases_updated_id;
