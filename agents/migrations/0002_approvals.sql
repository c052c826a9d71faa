-- Payments above the approval threshold wait here for a person: pending -> approved | denied, and an
-- approved request is used by exactly one payment (approved -> used) for the same URL and no more money.
CREATE TABLE approvals (
    id          TEXT    NOT NULL PRIMARY KEY,
    kind        TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    amount      BIGINT  NOT NULL,
    pay_to      TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    decided_at  BIGINT
);
