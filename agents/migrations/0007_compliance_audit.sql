-- Every compliance screening decision: the address, what each source answered (JSON), the list versions the
-- answers came from, the merged decision and what asked (a payment's payee or payer, `compliance screen`).
CREATE TABLE compliance_audit (
    id            TEXT    NOT NULL PRIMARY KEY,
    address       TEXT    NOT NULL,
    decision      TEXT    NOT NULL,
    sources       TEXT    NOT NULL,
    list_version  TEXT,
    context       TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX compliance_audit_created_at ON compliance_audit (created_at);
CREATE INDEX compliance_audit_address ON compliance_audit (address);
