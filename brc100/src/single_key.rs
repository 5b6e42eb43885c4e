//! [`SingleKey`]: the whole key in one process, for tests and vectors.

use k256::{
    elliptic_curve::{ops::Reduce, sec1::ToEncodedPoint, Field, PrimeField},
    ProjectivePoint, Scalar, U256,
};
use sha2::Sha256;
use wallet_bsv::brc42::{point, public_key, scalar, tweak};
use wallet_traits::{Error, ErrorKind, PublicKey, Result};
use zeroize::Zeroizing;

fn invalid(msg: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, msg.to_string())
}

/// A single-key reference for tests and vectors, as @bsv/sdk's `ProtoWallet` holds its key: the
/// same arithmetic as the MPC wallet with the whole key in one place. Never for real funds.
#[derive(Clone)]
pub struct SingleKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for SingleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SingleKey(public: {})", self.public_key())
    }
}

impl SingleKey {
    /// From 32 big-endian bytes (must be a valid non-zero scalar).
    pub fn from_bytes(b: [u8; 32]) -> Result<Self> {
        let s =
            Option::<Scalar>::from(Scalar::from_repr(b.into())).ok_or_else(|| invalid("not a valid private key"))?;
        if bool::from(s.is_zero()) {
            return Err(invalid("not a valid private key"));
        }
        Ok(Self(Zeroizing::new(b)))
    }

    fn scalar(&self) -> Scalar {
        Option::<Scalar>::from(Scalar::from_repr((*self.0).into())).expect("checked at construction")
    }

    /// The compressed public key of this single key (its identity key).
    pub fn public_key(&self) -> PublicKey {
        public_key(&(ProjectivePoint::GENERATOR * self.scalar())).expect("non-zero key")
    }

    /// `self * point`.
    pub fn ecdh(&self, other: &PublicKey) -> Result<PublicKey> {
        public_key(&(point(other)? * self.scalar()))
    }

    /// The BRC-42 child private key `self + HMAC(compressed(self * C), invoice)`.
    pub fn derive_child(&self, counterparty: &PublicKey, invoice: &str) -> Result<[u8; 32]> {
        let h = tweak(&self.ecdh(counterparty)?, invoice);
        Ok((self.scalar() + scalar(&h)).to_repr().into())
    }
}

#[async_trait::async_trait]
impl wallet_traits::KeyDeriver for SingleKey {
    fn identity_key(&self) -> PublicKey {
        self.public_key()
    }

    async fn ecdh(&self, point: &PublicKey) -> Result<PublicKey> {
        SingleKey::ecdh(self, point)
    }

    async fn linkage_proof(&self, counterparty: &PublicKey) -> Result<wallet_traits::LinkageProof> {
        use sha2::Digest;
        let b = point(counterparty)?;
        let shared = b * self.scalar();
        let r = Scalar::random(&mut rand::rngs::OsRng);
        let (big_r, s_prime) = (ProjectivePoint::GENERATOR * r, b * r);
        let mut h = Sha256::new();
        for p in [ProjectivePoint::GENERATOR * self.scalar(), b, shared, s_prime, big_r] {
            h.update(p.to_affine().to_encoded_point(true).as_bytes());
        }
        let e = <Scalar as Reduce<U256>>::reduce_bytes(&h.finalize());
        let z = r + e * self.scalar();
        Ok(wallet_traits::LinkageProof {
            shared: public_key(&shared)?,
            r: public_key(&big_r)?,
            s_prime: public_key(&s_prime)?,
            z: z.to_repr().into(),
        })
    }
}

#[async_trait::async_trait]
impl wallet_traits::Signer for SingleKey {
    fn public_key(&self) -> PublicKey {
        SingleKey::public_key(self)
    }

    async fn sign_digest(&self, digest: &[u8; 32], tweak: Option<&[u8; 32]>) -> Result<wallet_traits::EcdsaSignature> {
        use k256::ecdsa::signature::hazmat::PrehashSigner;
        let x = self.scalar() + tweak.map(scalar).unwrap_or(Scalar::ZERO);
        let key = k256::ecdsa::SigningKey::from_bytes(&x.to_repr()).map_err(|_| invalid("the tweaked key is zero"))?;
        let sig: k256::ecdsa::Signature = key.sign_prehash(digest).map_err(|_| invalid("signing failed"))?;
        let sig = sig.normalize_s().unwrap_or(sig);
        let (r, s) = sig.split_bytes();
        Ok(wallet_traits::EcdsaSignature { r: r.into(), s: s.into() })
    }

    async fn sign_transaction(
        &self,
        tx_ef: &[u8],
        inputs: &[wallet_traits::InputToSign],
        // A single key answers to no one: it signs what it is asked.
        _change: &[wallet_traits::ChangeClaim],
    ) -> Result<Vec<wallet_traits::EcdsaSignature>> {
        let tx = wallet_bsv::Transaction::from_bytes(tx_ef)?;
        let sighasher = wallet_bsv::sighash::Sighasher::new(&tx);
        let mut signatures = Vec::with_capacity(inputs.len());
        for input in inputs {
            let index = usize::try_from(input.index).unwrap_or(usize::MAX);
            let digest = sighasher.input_digest(index, input.sighash_type)?;
            signatures.push(wallet_traits::Signer::sign_digest(self, &digest, input.tweak.as_ref()).await?);
        }
        Ok(signatures)
    }
}
