-- One row per payment the facilitator has taken on, keyed the way the token keys authorizations:
-- (network, asset, payer, nonce). The primary key is what makes a payment settle at most once, across
-- requests, restarts and replicas.
CREATE TABLE settlements (
    network       TEXT    NOT NULL,
    asset         TEXT    NOT NULL,
    payer         TEXT    NOT NULL,
    nonce         TEXT    NOT NULL,
    payload_hash  TEXT    NOT NULL,
    pay_to        TEXT    NOT NULL,
    amount        TEXT    NOT NULL,
    -- reserved -> submitted -> confirmed | failed
    state         TEXT    NOT NULL,
    tx_hash       TEXT,
    raw_tx        TEXT,
    signer        TEXT,
    signer_nonce  BIGINT,
    error_reason  TEXT,
    error_message TEXT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (network, asset, payer, nonce)
);

CREATE INDEX settlements_unfinished ON settlements (state, updated_at);
CREATE INDEX settlements_payer ON settlements (payer, state);
