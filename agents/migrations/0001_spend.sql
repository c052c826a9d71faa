-- Every payment the buyer signed, so budgets survive restarts and reports can be drawn. A row is written
-- (state `signed`) before the signature leaves the process; what the seller answered moves it on:
-- signed -> settled | pending | unsettled (the seller did not settle: no money moved) | failed.
CREATE TABLE payments (
    id           TEXT    NOT NULL PRIMARY KEY,
    url          TEXT    NOT NULL,
    host         TEXT    NOT NULL,
    network      TEXT    NOT NULL,
    asset        TEXT    NOT NULL,
    pay_to       TEXT    NOT NULL,
    payer        TEXT    NOT NULL,
    nonce        TEXT    NOT NULL,
    amount       BIGINT  NOT NULL,
    state        TEXT    NOT NULL,
    tx_hash      TEXT,
    reason       TEXT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);

CREATE INDEX payments_by_time ON payments (created_at);
CREATE INDEX payments_by_host ON payments (host, created_at);
