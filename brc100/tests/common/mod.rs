//! A single key that counts what it is asked to do, so a test can tell that a refused request
//! ran no key operation (ECDH, linkage proof or signature) and how many signatures ran.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};

use wallet_brc100::SingleKey;
use wallet_traits::{EcdsaSignature, KeyDeriver, LinkageProof, PublicKey, Result, Signer};

#[derive(Debug)]
pub struct Counting {
    pub key: SingleKey,
    ops: AtomicUsize,
    signed: AtomicUsize,
}

impl Counting {
    pub fn new(secret: [u8; 32]) -> Self {
        Self { key: SingleKey::from_bytes(secret).unwrap(), ops: AtomicUsize::new(0), signed: AtomicUsize::new(0) }
    }

    /// Every key operation so far.
    pub fn ops(&self) -> usize {
        self.ops.load(Ordering::SeqCst)
    }

    /// Signatures so far.
    pub fn signed(&self) -> usize {
        self.signed.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl KeyDeriver for Counting {
    fn identity_key(&self) -> PublicKey {
        self.key.public_key()
    }
    async fn ecdh(&self, point: &PublicKey) -> Result<PublicKey> {
        self.ops.fetch_add(1, Ordering::SeqCst);
        self.key.ecdh(point)
    }
    async fn linkage_proof(&self, counterparty: &PublicKey) -> Result<LinkageProof> {
        self.ops.fetch_add(1, Ordering::SeqCst);
        KeyDeriver::linkage_proof(&self.key, counterparty).await
    }
}

#[async_trait::async_trait]
impl Signer for Counting {
    fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }
    async fn sign_digest(&self, digest: &[u8; 32], tweak: Option<&[u8; 32]>) -> Result<EcdsaSignature> {
        self.ops.fetch_add(1, Ordering::SeqCst);
        self.signed.fetch_add(1, Ordering::SeqCst);
        Signer::sign_digest(&self.key, digest, tweak).await
    }
}
