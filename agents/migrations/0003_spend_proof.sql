-- What the chain needs to settle a payment's fate later (`nerdcabal spend reconcile`): an x402 payment's
-- authorization stops being usable after `valid_before`; a direct transfer is found by its transaction hash,
-- known before it is broadcast, and is replaced once its account nonce (`chain_nonce`) is used by another.
ALTER TABLE payments ADD COLUMN kind TEXT NOT NULL DEFAULT 'x402';
ALTER TABLE payments ADD COLUMN valid_before BIGINT;
ALTER TABLE payments ADD COLUMN chain_nonce BIGINT;
UPDATE payments SET kind = 'transfer' WHERE host = 'direct-transfer';
CREATE INDEX payments_by_payer ON payments (payer, created_at);
CREATE INDEX payments_by_state ON payments (state, created_at);
