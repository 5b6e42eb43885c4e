//! The [`CertificateStore`] of [`SqlOutputStore`]: the wallet's certificates in `mpc_certificates`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use wallet_traits::{CertificateQuery, CertificateRecord, CertificateStore, Page, Result};

use crate::{db::Row, Dialect, SqlOutputStore};

// Acquiring a certificate again replaces it in place (its row, so its place in the order, stays).
const PUT: &str = "INSERT INTO mpc_certificates ([namespace, ]scope, cert_type, certifier, serial_number, subject, \
     revocation_outpoint, signature, fields, keyring, verifier) VALUES ([$ns, ]$1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT ([namespace, ]scope, cert_type, certifier, serial_number) DO UPDATE SET subject = excluded.subject, \
     revocation_outpoint = excluded.revocation_outpoint, signature = excluded.signature, fields = excluded.fields, \
     keyring = excluded.keyring, verifier = excluded.verifier";

// A wallet holds a handful of certificates: the query's conditions are applied to its rows here,
// in one place for both databases, rather than as a statement per combination.
const ALL: &str = "SELECT cert_type, certifier, serial_number, subject, revocation_outpoint, signature, fields, \
     keyring, verifier FROM mpc_certificates WHERE [namespace = $ns AND ]scope = $1 ORDER BY {SEQ}";

const DELETE: &str = "DELETE FROM mpc_certificates \
     WHERE [namespace = $ns AND ]scope = $1 AND cert_type = $2 AND serial_number = $3 AND certifier = $4";

impl<D: Dialect> SqlOutputStore<D> {
    fn certificate_from_row(&self, row: &Row<D>) -> Result<CertificateRecord> {
        let serial_number = self.sql.reader(row, "certificate", &"").text("serial_number")?;
        let r = self.sql.reader(row, "certificate", &serial_number);
        let map = |column: &'static str| -> Result<BTreeMap<String, String>> {
            serde_json::from_str(&r.text(column)?).map_err(|_| r.corrupted(column))
        };
        Ok(CertificateRecord {
            cert_type: r.text("cert_type")?,
            certifier: r.text("certifier")?,
            subject: r.text("subject")?,
            revocation_outpoint: r.text("revocation_outpoint")?,
            signature: r.text("signature")?,
            fields: map("fields")?,
            keyring: map("keyring")?,
            verifier: r.opt_text("verifier")?,
            serial_number,
        })
    }
}

#[async_trait]
impl<D: Dialect> CertificateStore for SqlOutputStore<D> {
    async fn put_certificate(&self, c: &CertificateRecord) -> Result<()> {
        let json = |m: &BTreeMap<String, String>| serde_json::to_string(m).unwrap_or_default();
        let (fields, keyring) = (json(&c.fields), json(&c.keyring));
        self.scoped(PUT)
            .bind(c.cert_type.as_str())
            .bind(c.certifier.as_str())
            .bind(c.serial_number.as_str())
            .bind(c.subject.as_str())
            .bind(c.revocation_outpoint.as_str())
            .bind(c.signature.as_str())
            .bind(&fields)
            .bind(&keyring)
            .bind(c.verifier.as_deref())
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "store a certificate"))?;
        Ok(())
    }

    async fn list_certificates(&self, q: &CertificateQuery) -> Result<Page<CertificateRecord>> {
        let rows =
            self.scoped(ALL).fetch_all(&self.sql.pool).await.map_err(|e| self.sql.fail(e, "list certificates"))?;
        let mut matching = Vec::new();
        for row in &rows {
            let c = self.certificate_from_row(row)?;
            if q.matches(&c) {
                matching.push(c);
            }
        }
        let total = matching.len() as u64;
        let items = matching.into_iter().skip(q.offset as usize).take(q.limit as usize).collect();
        Ok(Page { total, items })
    }

    async fn relinquish_certificate(&self, cert_type: &str, serial_number: &str, certifier: &str) -> Result<bool> {
        let removed = self
            .scoped(DELETE)
            .bind(cert_type)
            .bind(serial_number)
            .bind(certifier)
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "relinquish a certificate"))?;
        Ok(removed > 0)
    }
}
