#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod address;
pub mod amount;
pub mod beef;
pub mod brc29;
pub mod brc42;
pub mod certificate;
pub mod encoding;
pub mod fee;
pub mod hash;
pub mod interpreter;
pub mod merkle;
mod network;
pub mod pushdrop;
pub mod script;
pub mod sighash;
pub mod signature;
mod tx;

pub use beef::{AtomicBeef, Beef, BeefTx, BeefVersion};
pub use fee::SatoshisPerKilobyte;
pub use merkle::{MerkleLeaf, MerklePath};
pub use network::Network;
pub use script::Script;
pub use tx::{Transaction, TxId, TxInput, TxOutput};
