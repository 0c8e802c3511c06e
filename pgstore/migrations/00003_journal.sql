-- The journal package's logs (the admin trail, the disclosure log, the incident and
-- impact-assessment registers) and its sets of keyed hashes (distinct people counted for
-- the cross-border accounting). Bodies are bytea: stored byte for byte as hashed, never
-- re-encoded (jsonb would reorder keys and break the chain).

-- +goose Up
CREATE TABLE journal_entries (
    log  text COLLATE "C" NOT NULL,
    seq  bigint NOT NULL CHECK (seq > 0),
    time timestamptz NOT NULL,
    prev bytea,           -- NULL for the first entry
    hash bytea NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (log, seq)
);

CREATE TABLE journal_sets (
    name   text COLLATE "C" NOT NULL,
    member bytea NOT NULL,
    PRIMARY KEY (name, member)
);

CREATE TABLE journal_set_sizes (
    name text COLLATE "C" PRIMARY KEY,
    size bigint NOT NULL
);

-- +goose Down
DROP TABLE journal_set_sizes, journal_sets, journal_entries;
