//! The official BSV vectors (testdata/, copied from @bsv/sdk and the BRCs): BRC-42 derivation
//! and the BRC-100 key methods, through the single-key reference.

use std::{path::PathBuf, sync::Arc};

use serde_json::Value;
use wallet_brc100::{CreateHmacArgs, DecryptArgs, KeyArgs, KeyMethods, SingleKey, VerifyHmacArgs, VerifySignatureArgs};
use wallet_bsv::{brc42, Network};
use wallet_traits::PublicKey;

fn vectors(name: &str) -> Value {
    let dir = std::env::var_os("MPC_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata"));
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn key32(hex_str: &str) -> [u8; 32] {
    hex::decode(hex_str).unwrap().try_into().unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    v.as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect()
}

#[test]
fn brc42_private_key_derivation() {
    let v = vectors("brc42.json");
    let cases = v["privateKeyDerivation"].as_array().unwrap();
    assert!(!cases.is_empty());
    for c in cases {
        let sk = SingleKey::from_bytes(key32(c["recipientPrivateKey"].as_str().unwrap())).unwrap();
        let sender = PublicKey::from_slice(&hex::decode(c["senderPublicKey"].as_str().unwrap()).unwrap()).unwrap();
        let child = sk.derive_child(&sender, c["invoiceNumber"].as_str().unwrap()).unwrap();
        assert_eq!(hex::encode(child), c["privateKey"].as_str().unwrap());
    }
}

#[test]
fn brc42_public_key_derivation() {
    let v = vectors("brc42.json");
    let cases = v["publicKeyDerivation"].as_array().unwrap();
    assert!(!cases.is_empty());
    for c in cases {
        let sender = SingleKey::from_bytes(key32(c["senderPrivateKey"].as_str().unwrap())).unwrap();
        let recipient =
            PublicKey::from_slice(&hex::decode(c["recipientPublicKey"].as_str().unwrap()).unwrap()).unwrap();
        let h = brc42::tweak(&sender.ecdh(&recipient).unwrap(), c["invoiceNumber"].as_str().unwrap());
        assert_eq!(brc42::child_public_key(&recipient, &h).unwrap().to_hex(), c["publicKey"].as_str().unwrap());
    }
}

fn methods(root: SingleKey) -> KeyMethods {
    let root = Arc::new(root);
    KeyMethods::new(root.clone(), root, Network::Mainnet)
}

fn key_args(args: &Value) -> KeyArgs {
    let p = args["protocolID"].as_array().unwrap();
    KeyArgs {
        protocol_id: (p[0].as_i64().unwrap(), p[1].as_str().unwrap().to_string()),
        key_id: args["keyID"].as_str().unwrap().to_string(),
        counterparty: args["counterparty"].as_str().map(str::to_string),
    }
}

#[tokio::test]
async fn brc100_wallet_compliance() {
    let v = vectors("brc100.json");
    let cases = v["walletCompliance"].as_array().unwrap();
    assert!(!cases.is_empty());
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let root = match (c["rootPrivateKey"].as_str(), c["verifierRootKey"].as_str()) {
            (Some(k), _) => SingleKey::from_bytes(key32(k)).unwrap(),
            (None, Some(s)) if s.starts_with("anyone") => {
                let mut one = [0u8; 32];
                one[31] = 1;
                SingleKey::from_bytes(one).unwrap()
            }
            _ => panic!("{name}: no root key"),
        };
        let m = methods(root);
        let a = &c["args"];
        let data = a
            .get("data_utf8")
            .and_then(Value::as_str)
            .map(|s| s.as_bytes().to_vec())
            .or_else(|| a.get("data").map(bytes));
        match c["method"].as_str().unwrap() {
            "verifySignature" => {
                let ok = m
                    .verify_signature(VerifySignatureArgs {
                        key: key_args(a),
                        data,
                        hash_to_directly_verify: None,
                        signature: bytes(&a["signature"]),
                        for_self: a["forSelf"].as_bool(),
                    })
                    .await;
                assert!(ok.unwrap(), "{name}");
            }
            "verifyHmac" => {
                let ok = m
                    .verify_hmac(VerifyHmacArgs { key: key_args(a), data: data.unwrap(), hmac: bytes(&a["hmac"]) })
                    .await;
                assert!(ok.unwrap(), "{name}");
                let data = a["data_utf8"].as_str().unwrap().as_bytes().to_vec();
                let made = m.create_hmac(CreateHmacArgs { key: key_args(a), data }).await.unwrap();
                assert_eq!(made, bytes(&a["hmac"]), "{name}");
            }
            "decrypt" => {
                let plain =
                    m.decrypt(DecryptArgs { key: key_args(a), ciphertext: bytes(&a["ciphertext"]) }).await.unwrap();
                let expected = c["expected"]["plaintext_utf8"].as_str().expect("expected plaintext");
                assert_eq!(&plain[..], expected.as_bytes(), "{name}");
            }
            other => panic!("{name}: unknown method {other}"),
        }
    }
}

#[test]
fn symmetric_key_vectors() {
    use base64::Engine;
    let v = vectors("brc100.json");
    let b64 = base64::engine::general_purpose::STANDARD;
    for c in v["symmetricKeyAesGcm"]["vectors"].as_array().unwrap() {
        let key = b64.decode(c["key"].as_str().unwrap()).unwrap();
        let ct = b64.decode(c["ciphertext"].as_str().unwrap()).unwrap();
        let plain = brc42::decrypt(&key, &ct).unwrap();
        assert_eq!(&plain[..], c["plaintext"].as_str().unwrap().as_bytes());
    }
    for c in v["crossSdkSymmetric"]["vectors"].as_array().unwrap() {
        let sk = SingleKey::from_bytes(key32(c["privateKeyHex"].as_str().unwrap())).unwrap();
        let pk = sk.public_key();
        let x = &pk.as_bytes()[1..];
        let start = x.iter().position(|b| *b != 0).unwrap();
        let key = &x[start..];
        assert_eq!(hex::encode(x), c["keyXHex"].as_str().unwrap());
        if let Some(len) = c["expectedMinimalKeyLength"].as_u64() {
            assert_eq!(key.len() as u64, len);
        }
        let ct = hex::decode(c["ciphertextHex"].as_str().unwrap()).unwrap();
        assert_eq!(&brc42::decrypt(key, &ct).unwrap()[..], c["plaintext"].as_str().unwrap().as_bytes());
    }
}
