//! The key methods' own checks, over a counting single key: what is refused signs nothing.

mod common;

use std::sync::Arc;

use common::Counting;
use sha2::{Digest, Sha256};
use wallet_brc100::{CreateSignatureArgs, KeyArgs, KeyMethods, VerifySignatureArgs};
use wallet_bsv::Network;
use wallet_traits::ErrorKind;

fn methods() -> (KeyMethods, Arc<Counting>) {
    let key = Arc::new(Counting::new([7; 32]));
    (KeyMethods::new(key.clone(), key.clone(), Network::Mainnet), key)
}

fn key_args() -> KeyArgs {
    KeyArgs { protocol_id: (0, "hash length test".into()), key_id: "1".into(), counterparty: None }
}

/// Our own key for counterparty `anyone`, the default of `createSignature`.
fn anyone_args() -> KeyArgs {
    KeyArgs { counterparty: Some("anyone".into()), ..key_args() }
}

#[tokio::test]
async fn a_hash_to_sign_must_be_exactly_32_bytes() {
    let (m, key) = methods();
    for len in [0usize, 1, 31, 33, 64] {
        let args = CreateSignatureArgs { key: key_args(), data: None, hash_to_directly_sign: Some(vec![1; len]) };
        let e = m.create_signature(args).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{len}: {e}");
        assert_eq!(e.context_value("parameter"), Some("hashToDirectlySign"), "{len}");
        assert!(e.message().contains("exactly 32 bytes"), "{e}");
        assert!(e.message().contains(&format!("not {len} bytes")), "{e}");
    }
    // Data is not a way around it: the hash wins when both are given.
    let args = CreateSignatureArgs { key: key_args(), data: Some(b"x".to_vec()), hash_to_directly_sign: Some(vec![]) };
    assert_eq!(m.create_signature(args).await.unwrap_err().context_value("parameter"), Some("hashToDirectlySign"));
    assert_eq!(key.signed(), 0, "nothing was signed");

    let hash = vec![9; 32];
    let args = CreateSignatureArgs { key: key_args(), data: None, hash_to_directly_sign: Some(hash.clone()) };
    let signature = m.create_signature(args).await.unwrap();
    assert_eq!(key.signed(), 1);
    let verify = |hash: Vec<u8>| VerifySignatureArgs {
        key: anyone_args(),
        data: None,
        hash_to_directly_verify: Some(hash),
        signature: signature.clone(),
        for_self: Some(true),
    };
    assert!(m.verify_signature(verify(hash)).await.unwrap());
    for len in [0usize, 31, 33] {
        let e = m.verify_signature(verify(vec![9; len])).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(e.context_value("parameter"), Some("hashToDirectlyVerify"), "{len}");
    }
}

#[tokio::test]
async fn data_is_hashed_and_one_of_the_two_is_required() {
    let (m, key) = methods();
    let args = CreateSignatureArgs { key: key_args(), data: None, hash_to_directly_sign: None };
    let e = m.create_signature(args).await.unwrap_err();
    assert!(e.message().contains("args.data or args.hashToDirectlySign must be valid"), "{e}");
    let data = b"signed data".to_vec();
    let args = CreateSignatureArgs { key: key_args(), data: Some(data.clone()), hash_to_directly_sign: None };
    let signature = m.create_signature(args).await.unwrap();
    let digest: [u8; 32] = Sha256::digest(&data).into();
    let args = VerifySignatureArgs {
        key: anyone_args(),
        data: None,
        hash_to_directly_verify: Some(digest.to_vec()),
        signature,
        for_self: Some(true),
    };
    assert!(m.verify_signature(args).await.unwrap());
    assert_eq!(key.signed(), 1);
}
