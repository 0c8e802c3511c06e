-- The first schema of privguard's shared store. Tables are created in the schema goose
-- runs in (search_path is set to pgstore's schema, never public). Keys are bytea, compared
-- and ordered byte by byte as boltstore's keys are.

-- +goose Up

-- The consent ledger's chain head: one row, locked by every commit.
CREATE TABLE consent_head (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq  bigint NOT NULL,
    hash bytea -- NULL while seq is 0
);
INSERT INTO consent_head (seq, hash) VALUES (0, NULL);

CREATE TABLE consent_records (
    seq     bigint PRIMARY KEY,
    id      bytea NOT NULL UNIQUE,
    subject bytea NOT NULL,
    hash    bytea NOT NULL,
    body    bytea NOT NULL
);
CREATE INDEX consent_records_subject ON consent_records (subject, seq);

CREATE TABLE consent_idempotency (
    key         bytea PRIMARY KEY,
    seq         bigint NOT NULL,
    fingerprint bytea NOT NULL
);

CREATE TABLE consent_suppressions (
    key bytea PRIMARY KEY,
    seq bigint NOT NULL
);

-- Notices; cursor orders them by commit (inserts are serialised by the head lock).
CREATE TABLE consent_notices (
    key    bytea PRIMARY KEY,
    cursor bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    body   bytea NOT NULL
);

-- The one shared snapshot of a ledger's in-memory state (tens of MB; not compressed:
-- it is mostly hashes).
CREATE TABLE consent_snapshot (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    body       bytea NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE consent_snapshot ALTER COLUMN body SET STORAGE EXTERNAL;

-- Small secrets (HMAC keys, the vault's wrapped blind-index keyset): created once, by
-- whichever process asks first.
CREATE TABLE secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);

-- Readiness probes write here.
CREATE TABLE probe (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    at timestamptz NOT NULL
);

CREATE TABLE vault_keys (
    subject bytea PRIMARY KEY,
    wrapped bytea NOT NULL
);

-- Tombstones; cursor orders them by commit (inserts take an EXCLUSIVE table lock first).
CREATE TABLE vault_tombstones (
    tombstone   bytea PRIMARY KEY,
    cursor      bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    shredded_at timestamptz NOT NULL DEFAULT now()
);

-- Data-subject requests. Later migrations may add columns (leases); pgstore names the
-- columns it reads and writes.
CREATE TABLE dsar_requests (
    id   bytea PRIMARY KEY,
    body bytea NOT NULL
);

CREATE TABLE dsar_results (
    key  bytea PRIMARY KEY,
    body bytea NOT NULL
);

-- consent_lock_head locks the chain head and fails with SQLSTATE PGH01 unless it is
-- still (base, base_hash): the first statement of every consent commit.
-- +goose StatementBegin
CREATE FUNCTION consent_lock_head(base bigint, base_hash bytea) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    cur_seq  bigint;
    cur_hash bytea;
BEGIN
    SELECT seq, hash INTO cur_seq, cur_hash FROM consent_head FOR UPDATE;
    IF cur_seq <> base OR (cur_seq <> 0 AND cur_hash IS DISTINCT FROM base_hash) THEN
        RAISE EXCEPTION 'the ledger head is at % and the batch was built on %', cur_seq, base
            USING ERRCODE = 'PGH01';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION consent_lock_head(bigint, bytea);
DROP TABLE dsar_results, dsar_requests, vault_tombstones, vault_keys, probe, secrets,
    consent_snapshot, consent_notices, consent_suppressions, consent_idempotency,
    consent_records, consent_head;
