-- Baseline of the Dreichor schema.
--
-- Deliberately empty of domain tables: each runtime capability adds its own migration
-- (002_..., 003_...). The tracking table public.dreichor_schema_migrations is created by the
-- runner, not here. Migration files are append-only: never edit this file once applied;
-- add a new one instead.
SELECT 1;
