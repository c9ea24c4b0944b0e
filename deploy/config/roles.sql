-- Roles and schemas of Tributary. Run once per database as an administrator
-- (psql -v ON_ERROR_STOP=1 -f deploy/roles.sql); idempotent.
--
-- Each daemon connects as its own role, owns exactly one schema (and so is the only
-- one that can write it), and can read every other schema through tributary_reader.
DO $$
DECLARE
    s text;
    owner text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tributary_reader') THEN
        CREATE ROLE tributary_reader NOLOGIN;
    END IF;
    FOREACH s IN ARRAY ARRAY['collector', 'hydration', 'aggregator', 'forwarder', 'health'] LOOP
        owner := 'tributary_' || s;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = owner) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', owner);
        END IF;
        EXECUTE format('GRANT tributary_reader TO %I', owner);
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', s, owner);
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', s, owner);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO tributary_reader', s);
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO tributary_reader', s);
        EXECUTE format('GRANT SELECT ON ALL SEQUENCES IN SCHEMA %I TO tributary_reader', s);
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO tributary_reader', owner, s);
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON SEQUENCES TO tributary_reader', owner, s);
    END LOOP;
END
$$;

-- Nobody but the administrator creates schemas or objects in public.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
