-- Leased requests (dsar.Leaser, dsar/LEASES.md): beside its body, each request keeps its
-- subject, its version, when it is next due and its lease, so that replicas can share the
-- work. A schema migrated to 00001 may hold requests already: they are kept, their columns
-- derived from their bodies (below).
--
-- Ids are text in the "C" collation: ordered byte by byte, as Go compares strings (the
-- engine's pages, SharedStore, boltstore), whatever the database's default collation.

-- +goose Up

-- Every stored body must be a request with a subject and a version (every engine that
-- wrote to 00001 versioned its requests); refuse, with a message, a schema that holds
-- anything else rather than guess its version.
-- +goose StatementBegin
DO $$
DECLARE
    bad bigint;
BEGIN
    SELECT count(*) INTO bad FROM dsar_requests
     WHERE json_typeof(convert_from(body, 'UTF8')::json -> 'subject') IS DISTINCT FROM 'string'
        OR json_typeof(convert_from(body, 'UTF8')::json -> 'version') IS DISTINCT FROM 'number'
        OR (convert_from(body, 'UTF8')::json ->> 'version')::numeric < 1;
    IF bad > 0 THEN
        RAISE EXCEPTION 'dsar_requests: % stored requests have no subject or no version; they cannot be leased', bad;
    END IF;
END
$$;
-- +goose StatementEnd

ALTER TABLE dsar_requests
    ALTER COLUMN id TYPE text COLLATE "C" USING convert_from(id, 'UTF8'),
    ADD COLUMN subject      text,
    ADD COLUMN version      bigint,
    ADD COLUMN due          timestamptz,  -- NULL: never due
    ADD COLUMN lease_holder text,         -- Config.Replica of the holder; NULL: free
    ADD COLUMN lease_until  timestamptz;  -- the lease's expiry; NULL: free

-- The existing requests' due times: dsar's rule (dueAt) is too involved to repeat in SQL,
-- so every request that might have something left is due at once (at its receipt, so the
-- oldest are leased first), and none is run early by it: a leased request's round runs only
-- the tasks due by their own next attempts, and its housekeeping checks its own times, as
-- the engine alone does on every Step. Its first lease writes its exact due time. Only a
-- closed request with nothing left is never due: not a deletion still to scrub, not one
-- whose package (or parts) may still have to be destroyed.
UPDATE dsar_requests d
   SET subject = r.body ->> 'subject',
       version = (r.body ->> 'version')::bigint,
       due = CASE
           WHEN r.body ->> 'state' NOT IN ('completed', 'rejected', 'cancelled')
             OR (r.body ->> 'type' IN ('access', 'portability', 'categories')
                 AND r.body -> 'result' ->> 'purged' IS DISTINCT FROM 'true')
             OR (r.body ->> 'type' = 'deletion'
                 AND r.body ->> 'applied' = 'true'
                 AND r.body ->> 'scrubbed_at' IS NULL)
           THEN coalesce((r.body ->> 'received_at')::timestamptz, 'epoch')
       END
  FROM (SELECT id, convert_from(body, 'UTF8')::json AS body FROM dsar_requests) r
 WHERE d.id = r.id;

ALTER TABLE dsar_requests
    ALTER COLUMN subject SET NOT NULL,
    ALTER COLUMN version SET NOT NULL,
    ADD CONSTRAINT dsar_requests_version CHECK (version > 0);

-- Lease: the due requests, earliest first (a partial index: most requests are finished).
CREATE INDEX dsar_requests_due ON dsar_requests (due, id) WHERE due IS NOT NULL;
-- SubjectRequests: duplicates, erasure-before-access, the scrub of an erased subject.
CREATE INDEX dsar_requests_subject ON dsar_requests (subject);

-- +goose Down
DROP INDEX dsar_requests_subject, dsar_requests_due;
ALTER TABLE dsar_requests
    DROP CONSTRAINT dsar_requests_version,
    DROP COLUMN lease_until,
    DROP COLUMN lease_holder,
    DROP COLUMN due,
    DROP COLUMN version,
    DROP COLUMN subject,
    ALTER COLUMN id TYPE bytea USING convert_to(id, 'UTF8');
