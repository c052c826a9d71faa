-- Local treasury custody: payments the policy sends to the owners (M of N) wait here as proposals.
-- pending_approval -> approved (M owners signed; a transfer executes at once, an x402 payment waits for the
-- agent's retry) -> executed (its payment row is `payment_id`) | expired | cancelled. An approved proposal
-- whose execution failed stays approved, for `execute` to retry.
CREATE TABLE treasury_proposals (
    id          BIGINT  NOT NULL PRIMARY KEY,
    agent       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    pay_to      TEXT    NOT NULL,
    amount      BIGINT  NOT NULL,
    asset       TEXT    NOT NULL,
    network     TEXT    NOT NULL,
    memo        TEXT    NOT NULL,
    url         TEXT,
    rule        TEXT    NOT NULL,
    required    BIGINT  NOT NULL,
    state       TEXT    NOT NULL,
    payment_id  TEXT,
    tx_hash     TEXT,
    last_error  TEXT,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE INDEX treasury_proposals_by_state ON treasury_proposals (state, created_at);

-- One owner's EIP-712 signature of a proposal; revoking deletes it while the proposal is pending.
CREATE TABLE treasury_approvals (
    proposal_id BIGINT  NOT NULL,
    owner       TEXT    NOT NULL,
    signature   TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (proposal_id, owner)
);
