//! The BRC-42/100 vectors through the real MPC wallet: the vector's root key is split into three
//! sealed shares (test-only trusted dealer), stored in SQLite files, and every derivation runs a
//! distributed ECDH with DLEQ-verified partials; signatures are threshold signatures.

mod common;

use std::{path::PathBuf, sync::Arc};

use common::*;
use serde_json::Value;
use wallet_brc100::{
    CreateHmacArgs, CreateSignatureArgs, DecryptArgs, EncryptArgs, GetPublicKeyArgs, KeyArgs, KeyMethods, SingleKey,
    VerifyHmacArgs, VerifySignatureArgs,
};
use wallet_engine::{Network, Provisioned, Wallet};
use wallet_traits::ShareStore;

fn vectors(name: &str) -> Value {
    let dir = std::env::var_os("MPC_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata"));
    serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

fn key32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    v.as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect()
}

fn one() -> [u8; 32] {
    let mut k = [0u8; 32];
    k[31] = 1;
    k
}

/// An MPC wallet whose (test-imported) root key is `root`, restored from SQLite files.
async fn mpc_wallet(root: [u8; 32]) -> (tempfile::TempDir, Cosigners, Wallet) {
    let dir = tempfile::tempdir().unwrap();
    let s = sealer(SECRET);
    let records =
        wallet_engine::insecure_testing::import_key(root, 2, &key(), &[&s, &s, &s], wallet_engine::Protocol::CURRENT)
            .unwrap();
    for (record, file) in records.iter().zip(["agent.db", "cosigner-1.db", "cosigner-2.db"]) {
        let store = wallet_backend_sqlite::SqliteShareStore::open(dir.path().join(file)).await.unwrap();
        store.create_share(record).await.unwrap();
        store.close().await;
    }
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let (wallet, p) = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap();
    assert_eq!(p, Provisioned::Restored);
    (dir, cosigners, wallet)
}

fn methods_of(wallet: &Wallet) -> KeyMethods {
    let w = Arc::new(wallet.clone());
    KeyMethods::new(w.clone(), w, Network::Mainnet)
}

fn reference(root: [u8; 32]) -> KeyMethods {
    let k = Arc::new(SingleKey::from_bytes(root).unwrap());
    KeyMethods::new(k.clone(), k, Network::Mainnet)
}

fn key_args(a: &Value) -> KeyArgs {
    let p = a["protocolID"].as_array().unwrap();
    KeyArgs {
        protocol_id: (p[0].as_i64().unwrap(), p[1].as_str().unwrap().to_string()),
        key_id: a["keyID"].as_str().unwrap().to_string(),
        counterparty: a["counterparty"].as_str().map(str::to_string),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wallet_compliance_vectors_through_mpc() {
    let v = vectors("brc100.json");
    for c in v["walletCompliance"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let root = c["rootPrivateKey"].as_str().map(key32).unwrap_or_else(one);
        let (_dir, _cosigners, wallet) = mpc_wallet(root).await;
        assert_eq!(wallet.identity_key(), SingleKey::from_bytes(root).unwrap().public_key(), "{name}");
        let m = methods_of(&wallet);
        let a = &c["args"];
        let data = a["data_utf8"].as_str().map(|s| s.as_bytes().to_vec());
        match c["method"].as_str().unwrap() {
            "verifySignature" => {
                let args = VerifySignatureArgs {
                    key: key_args(a),
                    data,
                    hash_to_directly_verify: None,
                    signature: bytes(&a["signature"]),
                    for_self: None,
                };
                assert!(m.verify_signature(args).await.unwrap(), "{name}");
            }
            "verifyHmac" => {
                let hmac = bytes(&a["hmac"]);
                let made =
                    m.create_hmac(CreateHmacArgs { key: key_args(a), data: data.clone().unwrap() }).await.unwrap();
                assert_eq!(made, hmac, "{name}");
                assert!(m.verify_hmac(VerifyHmacArgs { key: key_args(a), data: data.unwrap(), hmac }).await.unwrap());
            }
            "decrypt" => {
                let plain =
                    m.decrypt(DecryptArgs { key: key_args(a), ciphertext: bytes(&a["ciphertext"]) }).await.unwrap();
                assert_eq!(&plain[..], c["expected"]["plaintext_utf8"].as_str().unwrap().as_bytes(), "{name}");
            }
            other => panic!("{name}: unknown method {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn key_deriver_fixture_both_ways() {
    let v = vectors("brc100.json");
    let f = &v["derivedByResearcher"]["keyDeriverFixture"];
    let (_dir, _cosigners, wallet) = mpc_wallet(key32(f["rootPrivateKey"].as_str().unwrap())).await;
    let ours = methods_of(&wallet);
    let counterparty_key = key32(f["counterpartyPrivateKey"].as_str().unwrap());
    let theirs = reference(counterparty_key);
    let cp_pub = f["counterpartyPublicKey"].as_str().unwrap().to_string();
    let our_pub = wallet.identity_key().to_hex();
    assert_eq!(our_pub, f["rootPublicKey"].as_str().unwrap());
    let protocol = (0, "testprotocol".to_string());
    let get = |for_self| GetPublicKeyArgs {
        identity_key: false,
        protocol_id: Some(protocol.clone()),
        key_id: Some("12345".into()),
        counterparty: Some(cp_pub.clone()),
        for_self: Some(for_self),
    };
    assert_eq!(
        ours.get_public_key(get(false)).await.unwrap().public_key,
        f["derivePublicKey_forSelfFalse"].as_str().unwrap()
    );
    assert_eq!(
        ours.get_public_key(get(true)).await.unwrap().public_key,
        f["derivePublicKey_forSelfTrue"].as_str().unwrap()
    );

    // Our threshold signature verifies at the counterparty (its view: counterparty = us).
    let ours_k = KeyArgs { protocol_id: protocol.clone(), key_id: "12345".into(), counterparty: Some(cp_pub.clone()) };
    let theirs_k =
        KeyArgs { protocol_id: protocol.clone(), key_id: "12345".into(), counterparty: Some(our_pub.clone()) };
    let sig = ours
        .create_signature(CreateSignatureArgs {
            key: ours_k.clone(),
            data: Some(b"hello".to_vec()),
            hash_to_directly_sign: None,
        })
        .await
        .unwrap();
    let verify = VerifySignatureArgs {
        key: theirs_k.clone(),
        data: Some(b"hello".to_vec()),
        hash_to_directly_verify: None,
        signature: sig,
        for_self: None,
    };
    assert!(theirs.verify_signature(verify).await.unwrap());

    // Ciphertexts decrypt both ways; HMACs agree.
    let ct = ours.encrypt(EncryptArgs { key: ours_k.clone(), plaintext: b"to them".to_vec() }).await.unwrap();
    assert_eq!(&theirs.decrypt(DecryptArgs { key: theirs_k.clone(), ciphertext: ct }).await.unwrap()[..], b"to them");
    let ct = theirs.encrypt(EncryptArgs { key: theirs_k.clone(), plaintext: b"to us".to_vec() }).await.unwrap();
    assert_eq!(&ours.decrypt(DecryptArgs { key: ours_k.clone(), ciphertext: ct }).await.unwrap()[..], b"to us");
    let a = ours.create_hmac(CreateHmacArgs { key: ours_k, data: b"m".to_vec() }).await.unwrap();
    let b = theirs.create_hmac(CreateHmacArgs { key: theirs_k, data: b"m".to_vec() }).await.unwrap();
    assert_eq!(a, b);
}

/// Every `derivedByResearcher` value, through the MPC wallet where it is a public value and
/// through the single-key reference where it is a private one.
#[tokio::test(flavor = "multi_thread")]
async fn researcher_intermediates() {
    use wallet_bsv::brc42;
    use wallet_traits::PublicKey;
    let v = vectors("brc100.json");
    let r = &v["derivedByResearcher"];
    let hex_of = |s: &Value| s.as_str().unwrap().to_string();
    let pk = |s: &Value| PublicKey::from_slice(&hex::decode(s.as_str().unwrap()).unwrap()).unwrap();
    let x32 = |x: &[u8]| {
        let mut out = vec![0u8; 32 - x.len()];
        out.extend_from_slice(x);
        hex::encode(out)
    };

    // KeyDeriver fixture: root 42, counterparty 69.
    let f = &r["keyDeriverFixture"];
    let root = key32(f["rootPrivateKey"].as_str().unwrap());
    let (_dir, _cosigners, wallet) = mpc_wallet(root).await;
    let m = methods_of(&wallet);
    let cp = pk(&f["counterpartyPublicKey"]);
    let invoice = f["invoiceNumber"].as_str().unwrap();
    let shared = wallet.ecdh(&cp).await.unwrap();
    assert_eq!(shared.to_hex(), hex_of(&f["revealCounterpartySecret_compressedSharedPoint"]));
    let h = brc42::tweak(&shared, invoice);
    assert_eq!(hex::encode(h), hex_of(&f["revealSpecificSecret_hmac"]));
    let sym = brc42::symmetric_key(&shared, &h, &wallet.identity_key(), &cp).unwrap();
    assert_eq!(x32(&sym), hex_of(&f["deriveSymmetricKey_x"]));
    let reference_root = SingleKey::from_bytes(root).unwrap();
    assert_eq!(hex::encode(reference_root.derive_child(&cp, invoice).unwrap()), hex_of(&f["derivePrivateKey"]));
    let g = brc42::generator();
    assert_eq!(
        hex::encode(reference_root.derive_child(&g, invoice).unwrap()),
        hex_of(&f["anyone"]["derivePrivateKey_counterpartyAnyone"])
    );
    let anyone_view = m
        .get_public_key(GetPublicKeyArgs {
            identity_key: false,
            protocol_id: Some((0, "testprotocol".into())),
            key_id: Some("12345".into()),
            counterparty: Some("anyone".into()),
            for_self: Some(true),
        })
        .await
        .unwrap();
    assert_eq!(anyone_view.public_key, hex_of(&f["anyone"]["publicKeyAnyoneCanDerive"]));

    // BRC-2 intermediates: the HMAC/encryption vector's root and counterparty.
    let b2 = &r["brc2Intermediates"];
    let c = v["walletCompliance"].as_array().unwrap().iter().find(|c| c["method"] == "verifyHmac").unwrap();
    let root = key32(c["rootPrivateKey"].as_str().unwrap());
    let cp = pk(&c["args"]["counterparty"]);
    let invoice = b2["invoiceNumber"].as_str().unwrap();
    let (_dir2, _cosigners2, wallet) = mpc_wallet(root).await;
    assert_eq!(wallet.identity_key().to_hex(), hex_of(&b2["rootPublicKey"]));
    let shared = wallet.ecdh(&cp).await.unwrap();
    let h = brc42::tweak(&shared, invoice);
    assert_eq!(brc42::child_public_key(&cp, &h).unwrap().to_hex(), hex_of(&b2["counterpartyChildPublicKey"]));
    let sym = brc42::symmetric_key(&shared, &h, &wallet.identity_key(), &cp).unwrap();
    assert_eq!(x32(&sym), hex_of(&b2["symmetricKeyX"]));
    assert_eq!(
        hex::encode(SingleKey::from_bytes(root).unwrap().derive_child(&cp, invoice).unwrap()),
        hex_of(&b2["childPrivateKey"])
    );

    // BRC-3 intermediates: "anyone" (key 1) deriving the signer's child public key.
    let b3 = &r["brc3Intermediates"];
    let c = v["walletCompliance"].as_array().unwrap().iter().find(|c| c["method"] == "verifySignature").unwrap();
    let signer = pk(&c["args"]["counterparty"]);
    let anyone = SingleKey::from_bytes(one()).unwrap();
    let h = brc42::tweak(&anyone.ecdh(&signer).unwrap(), b3["invoiceNumber"].as_str().unwrap());
    assert_eq!(brc42::child_public_key(&signer, &h).unwrap().to_hex(), hex_of(&b3["signerChildPublicKey"]));
    use sha2::Digest;
    let digest = sha2::Sha256::digest(c["args"]["data_utf8"].as_str().unwrap().as_bytes());
    assert_eq!(hex::encode(digest), hex_of(&b3["sha256OfData"]));
}

/// zG = R + eA and zB = S' + eS with e = SHA-256(A || B || S || S' || R) mod n, checked with k256.
fn schnorr_verifies(
    a: &wallet_traits::PublicKey,
    b: &wallet_traits::PublicKey,
    p: &wallet_traits::LinkageProof,
) -> bool {
    use k256::elliptic_curve::{ops::Reduce, PrimeField};
    use sha2::Digest;
    let pt = |k: &wallet_traits::PublicKey| k256::PublicKey::from_sec1_bytes(k.as_bytes()).unwrap().to_projective();
    let mut h = sha2::Sha256::new();
    for k in [a, b, &p.shared, &p.s_prime, &p.r] {
        h.update(k.as_bytes());
    }
    let e = <k256::Scalar as Reduce<k256::U256>>::reduce_bytes(&h.finalize());
    let z = Option::<k256::Scalar>::from(k256::Scalar::from_repr(p.z.into())).unwrap();
    k256::ProjectivePoint::GENERATOR * z == pt(&p.r) + pt(a) * e && pt(b) * z == pt(&p.s_prime) + pt(&p.shared) * e
}

#[tokio::test(flavor = "multi_thread")]
async fn joint_linkage_proof_matches_the_fixture_and_verifies() {
    use wallet_traits::KeyDeriver;
    let v = vectors("brc100.json");
    let f = &v["derivedByResearcher"]["keyDeriverFixture"];
    let root = key32(f["rootPrivateKey"].as_str().unwrap());
    let (_dir, _cosigners, wallet) = mpc_wallet(root).await;
    let cp = wallet_traits::PublicKey::from_slice(&hex::decode(f["counterpartyPublicKey"].as_str().unwrap()).unwrap())
        .unwrap();
    let proof = wallet.linkage_proof(&cp).await.unwrap();
    assert_eq!(proof.shared.to_hex(), f["revealCounterpartySecret_compressedSharedPoint"].as_str().unwrap());
    assert!(schnorr_verifies(&wallet.identity_key(), &cp, &proof));
    let mut forged = proof;
    forged.z[31] ^= 1;
    assert!(!schnorr_verifies(&wallet.identity_key(), &cp, &forged));
    // The single-key reference produces proofs of the same form.
    let reference = SingleKey::from_bytes(root).unwrap();
    let p = reference.linkage_proof(&cp).await.unwrap();
    assert_eq!(p.shared, proof.shared);
    assert!(schnorr_verifies(&reference.public_key(), &cp, &p));
}
