-- A failed payment whose failure was the facilitator's or the chain's (an RPC fault, gas, a refused or dropped
-- transaction) rather than the payment's own: a later settle of the same payload may take it on again.
ALTER TABLE settlements ADD COLUMN retryable BIGINT NOT NULL DEFAULT 0;

-- Rows that share one (batch) transaction are reconciled together.
CREATE INDEX settlements_tx ON settlements (tx_hash);
CREATE INDEX settlements_signer ON settlements (network, signer, state);
