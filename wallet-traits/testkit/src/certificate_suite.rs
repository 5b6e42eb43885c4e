//! The conformance suite of the [`CertificateStore`] contract, run against every output store
//! that keeps certificates ([`certificate_store_tests!`](crate::certificate_store_tests)).

use std::{collections::BTreeMap, sync::Arc};

use wallet_traits::{CertificateQuery, CertificateRecord, CertificateStore, OutputStore};

use crate::unique;

/// The store's certificates; a store under this suite must keep them.
pub fn certificates_of(store: Arc<dyn OutputStore>) -> Arc<dyn CertificateStore> {
    store.certificates().expect("a store under the certificate suite keeps certificates")
}

/// A certificate of `cert_type` from `certifier` with fields `names` (values and keys made up:
/// a store neither reads nor checks them).
pub fn sample_certificate(cert_type: &str, certifier: &str, names: &[&str]) -> CertificateRecord {
    let serial = unique("serial");
    CertificateRecord {
        cert_type: cert_type.to_string(),
        serial_number: serial.clone(),
        subject: format!("02{}", "11".repeat(32)),
        certifier: certifier.to_string(),
        revocation_outpoint: format!("{}.0", "00".repeat(32)),
        signature: format!("3044{}", "22".repeat(68)),
        fields: names.iter().map(|n| (n.to_string(), format!("value of {n} in {serial}"))).collect(),
        keyring: names.iter().map(|n| (n.to_string(), format!("key of {n}"))).collect(),
        verifier: None,
    }
}

fn everything() -> CertificateQuery {
    CertificateQuery { limit: 100, ..Default::default() }
}

/// Each case of the suite, for [`certificate_store_tests!`](crate::certificate_store_tests).
pub mod certificate_cases {
    use super::*;

    /// Certificates read back whole, oldest first.
    pub async fn put_and_list(s: Arc<dyn OutputStore>) {
        let c = certificates_of(s);
        let (certifier, kind) = (unique("certifier"), unique("type"));
        let mut one = sample_certificate(&kind, &certifier, &["name", "email"]);
        one.verifier = Some(format!("03{}", "33".repeat(32)));
        let two = sample_certificate(&kind, &certifier, &[]);
        c.put_certificate(&one).await.unwrap();
        c.put_certificate(&two).await.unwrap();
        let page = c.list_certificates(&CertificateQuery { types: vec![kind], ..everything() }).await.unwrap();
        assert_eq!(page.total, 2);
        assert_eq!(page.items, vec![one, two]);
    }

    /// Acquiring a certificate again replaces it where it stood; nothing is duplicated.
    pub async fn put_again_replaces_in_place(s: Arc<dyn OutputStore>) {
        let c = certificates_of(s);
        let (certifier, kind) = (unique("certifier"), unique("type"));
        let first = sample_certificate(&kind, &certifier, &["name"]);
        let second = sample_certificate(&kind, &certifier, &["name"]);
        c.put_certificate(&first).await.unwrap();
        c.put_certificate(&second).await.unwrap();
        let mut again = first.clone();
        again.fields.insert("name".into(), "re-issued".into());
        again.keyring = BTreeMap::from([("name".into(), "another key".into())]);
        again.signature = format!("3045{}", "44".repeat(69));
        c.put_certificate(&again).await.unwrap();
        let page = c.list_certificates(&CertificateQuery { types: vec![kind], ..everything() }).await.unwrap();
        assert_eq!(page.items, vec![again, second]);
        assert_eq!(page.total, 2);
    }

    /// Every condition of a query holds for what it returns; the total ignores paging.
    pub async fn filters_and_pages(s: Arc<dyn OutputStore>) {
        let c = certificates_of(s);
        let (a, b) = (unique("certifier-a"), unique("certifier-b"));
        let (t1, t2) = (unique("type-1"), unique("type-2"));
        let mut all = Vec::new();
        for (certifier, kind) in [(&a, &t1), (&a, &t2), (&b, &t1), (&a, &t1), (&b, &t2)] {
            let cert = sample_certificate(kind, certifier, &["f"]);
            c.put_certificate(&cert).await.unwrap();
            all.push(cert);
        }
        let q = |certifiers: Vec<&String>, types: Vec<&String>| CertificateQuery {
            certifiers: certifiers.into_iter().cloned().collect(),
            types: types.into_iter().cloned().collect(),
            ..everything()
        };
        let serials = |page: wallet_traits::Page<CertificateRecord>| {
            page.items.into_iter().map(|c| c.serial_number).collect::<Vec<_>>()
        };
        let of = |idx: &[usize]| idx.iter().map(|i| all[*i].serial_number.clone()).collect::<Vec<_>>();
        assert_eq!(serials(c.list_certificates(&q(vec![&a], vec![&t1])).await.unwrap()), of(&[0, 3]));
        assert_eq!(serials(c.list_certificates(&q(vec![&a, &b], vec![&t2])).await.unwrap()), of(&[1, 4]));
        assert_eq!(serials(c.list_certificates(&q(vec![&b], vec![&t1, &t2])).await.unwrap()), of(&[2, 4]));
        let mut paged = q(vec![&a, &b], vec![&t1, &t2]);
        (paged.limit, paged.offset) = (2, 1);
        let page = c.list_certificates(&paged).await.unwrap();
        assert_eq!(page.total, 5, "the total counts every match");
        assert_eq!(serials(page), of(&[1, 2]));
        let exact = CertificateQuery {
            serial_number: Some(all[3].serial_number.clone()),
            certifier: Some(a.clone()),
            ..everything()
        };
        assert_eq!(c.list_certificates(&exact).await.unwrap().items, vec![all[3].clone()]);
        let wrong =
            CertificateQuery { serial_number: Some(all[3].serial_number.clone()), certifier: Some(b), ..everything() };
        assert_eq!(c.list_certificates(&wrong).await.unwrap().total, 0);
    }

    /// A relinquished certificate is gone; relinquishing it again finds nothing.
    pub async fn relinquish_removes(s: Arc<dyn OutputStore>) {
        let c = certificates_of(s);
        let (certifier, kind) = (unique("certifier"), unique("type"));
        let (keep, drop) =
            (sample_certificate(&kind, &certifier, &["x"]), sample_certificate(&kind, &certifier, &["x"]));
        c.put_certificate(&keep).await.unwrap();
        c.put_certificate(&drop).await.unwrap();
        assert!(!c.relinquish_certificate(&kind, &drop.serial_number, "another certifier").await.unwrap());
        assert!(c.relinquish_certificate(&kind, &drop.serial_number, &certifier).await.unwrap());
        assert!(!c.relinquish_certificate(&kind, &drop.serial_number, &certifier).await.unwrap());
        let page = c.list_certificates(&CertificateQuery { types: vec![kind.clone()], ..everything() }).await.unwrap();
        assert_eq!(page.items, vec![keep]);
        c.put_certificate(&drop).await.unwrap();
        let page = c.list_certificates(&CertificateQuery { types: vec![kind], ..everything() }).await.unwrap();
        assert_eq!(page.total, 2, "a relinquished certificate can be acquired again");
    }

    /// Debug output names fields, never their values or keys.
    pub async fn debug_hides_values(s: Arc<dyn OutputStore>) {
        let c = certificates_of(s);
        let cert = sample_certificate(&unique("type"), &unique("certifier"), &["secretive"]);
        c.put_certificate(&cert).await.unwrap();
        let shown = format!("{:?}", c.list_certificates(&everything()).await.unwrap().items);
        assert!(shown.contains("secretive") && !shown.contains("value of") && !shown.contains("key of"), "{shown}");
    }
}

/// Expands to one `#[tokio::test]` per case of [`certificate_cases`], each against a fresh
/// [`OutputFixture`](crate::OutputFixture) from `$make` (an async function).
#[macro_export]
macro_rules! certificate_store_tests {
    ($make:path) => {
        $crate::certificate_store_tests!(@cases $make;
            put_and_list, put_again_replaces_in_place, filters_and_pages, relinquish_removes, debug_hides_values);
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let fixture: $crate::OutputFixture = $make().await;
                $crate::certificate_cases::$case(fixture.subject.clone()).await;
                drop(fixture);
            }
        )*
    };
}
