-- The wallet's identity certificates (the CertificateStore contract), one row each, keyed by type,
-- certifier and serial number within the scope (wallet id). `fields` and `keyring` are JSON
-- objects (field name -> base64); `seq` orders lists oldest first.
CREATE TABLE mpc_certificates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    cert_type TEXT NOT NULL,
    certifier TEXT NOT NULL,
    serial_number TEXT NOT NULL,
    subject TEXT NOT NULL,
    revocation_outpoint TEXT NOT NULL,
    signature TEXT NOT NULL,
    fields TEXT NOT NULL,
    keyring TEXT NOT NULL,
    verifier TEXT
);
CREATE UNIQUE INDEX mpc_certificates_key ON mpc_certificates (scope, cert_type, certifier, serial_number);
