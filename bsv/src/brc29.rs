//! BRC-29 payments: the key a payment pays to is a BRC-42 child key under protocol
//! `[2, "3241645161d8"]` and key id `"{derivation prefix} {derivation suffix}"`.

use wallet_traits::Result;

use crate::brc42::{invoice_number, WalletProtocol};

/// The BRC-29 protocol name.
pub const PROTOCOL_NAME: &str = "3241645161d8";
/// Its security level.
pub const SECURITY_LEVEL: i64 = 2;

/// The BRC-29 protocol as BRC-100 arguments name it.
pub fn protocol() -> WalletProtocol {
    (SECURITY_LEVEL, PROTOCOL_NAME.to_string())
}

/// The key id of a payment: the prefix and suffix (base64 strings, used as given) joined by a space.
pub fn key_id(derivation_prefix: &str, derivation_suffix: &str) -> String {
    format!("{derivation_prefix} {derivation_suffix}")
}

/// The BRC-43 invoice number whose child key a payment pays to.
pub fn invoice(derivation_prefix: &str, derivation_suffix: &str) -> Result<String> {
    invoice_number(SECURITY_LEVEL, PROTOCOL_NAME, &key_id(derivation_prefix, derivation_suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invoice_of_a_payment() {
        assert_eq!(invoice("cHJlZml4", "c3VmZml4").unwrap(), "2-3241645161d8-cHJlZml4 c3VmZml4");
        assert_eq!(protocol(), (2, "3241645161d8".to_string()));
    }
}
