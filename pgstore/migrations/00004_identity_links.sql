-- Identity links (the identity package): a subject's phone numbers, email addresses,
-- WeChat ids and device ids, each as a keyed hash of the normalised value (the key) and a
-- body that holds the masked value and, for phones and emails, the address sealed in the
-- vault under the subject's key. No column holds a clear identifier.

-- +goose Up
CREATE TABLE identity_links (
    type    text COLLATE "C" NOT NULL,
    hash    text COLLATE "C" NOT NULL,
    subject text COLLATE "C" NOT NULL,
    body    bytea NOT NULL,
    PRIMARY KEY (type, hash)
);

CREATE INDEX identity_links_subject ON identity_links (subject, type, hash);

-- +goose Down
DROP TABLE identity_links;
