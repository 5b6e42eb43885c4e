//! P2PKH addresses: Base58Check of a version byte (0x00 mainnet, 0x6f testnet) and a
//! HASH160 of a public key, as wallets show them.

use wallet_traits::{Error, ErrorKind, Result};

use crate::{hash::hash256, network::Network, script::Script};

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// The longest text decoded: an address is 25 bytes, about 34 characters.
const MAX_LEN: usize = 64;

fn invalid(message: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, message.to_string())
}

/// Base58 of `bytes` (leading zero bytes as `1`s).
pub fn base58_encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    // Digits in base 58, least significant first.
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
    for &b in &bytes[zeros..] {
        let mut carry = u32::from(b);
        for d in &mut digits {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = "1".repeat(zeros);
    out.extend(digits.iter().rev().map(|&d| ALPHABET[usize::from(d)] as char));
    out
}

/// The bytes of Base58 text; `None` for a character outside the alphabet or text longer than
/// an address.
pub fn base58_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() > MAX_LEN {
        return None;
    }
    let ones = text.bytes().take_while(|c| *c == b'1').count();
    let mut bytes: Vec<u8> = Vec::with_capacity(text.len());
    for c in text.bytes().skip(ones) {
        let mut carry = ALPHABET.iter().position(|a| *a == c)? as u32;
        for b in &mut bytes {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; ones];
    out.extend(bytes.iter().rev());
    Some(out)
}

/// The P2PKH address of `pubkey_hash` on `network`.
pub fn p2pkh_address(pubkey_hash: &[u8; 20], network: Network) -> String {
    let mut payload = Vec::with_capacity(25);
    payload.push(version_byte(network));
    payload.extend_from_slice(pubkey_hash);
    let check = hash256(&payload);
    payload.extend_from_slice(&check[..4]);
    base58_encode(&payload)
}

fn version_byte(network: Network) -> u8 {
    match network {
        Network::Mainnet => 0x00,
        Network::Testnet => 0x6f,
    }
}

/// The network and public-key hash of a P2PKH address; refuses a bad checksum or another kind
/// of address.
pub fn parse_p2pkh_address(address: &str) -> Result<(Network, [u8; 20])> {
    let bytes = base58_decode(address.trim()).ok_or_else(|| invalid("an address is Base58 text"))?;
    if bytes.len() != 25 {
        return Err(invalid("a P2PKH address holds 25 bytes"));
    }
    let (payload, check) = bytes.split_at(21);
    if hash256(payload)[..4] != *check {
        return Err(invalid("the address's checksum does not match: a character is wrong"));
    }
    let network = match payload[0] {
        0x00 => Network::Mainnet,
        0x6f => Network::Testnet,
        other => {
            return Err(invalid(&format!("version byte {other:#04x} is not a P2PKH address of mainnet or testnet")))
        }
    };
    let mut hash = [0u8; 20];
    hash.copy_from_slice(&payload[1..]);
    Ok((network, hash))
}

/// The most a payee's locking script given as hex may hold (bytes); a payment's is far smaller.
pub const MAX_PAYEE_SCRIPT: usize = 10_000;

/// Where a payment goes: a P2PKH address (with its network, which the paying wallet must check
/// against its own) or a locking script in hex (at most [`MAX_PAYEE_SCRIPT`] bytes, one whose
/// pushes parse).
pub fn payee(to: &str) -> Result<(Option<Network>, Script)> {
    let to = to.trim();
    if let Ok((network, hash)) = parse_p2pkh_address(to) {
        return Ok((Some(network), Script::p2pkh_lock(&hash)));
    }
    if to.is_empty() {
        return Err(invalid("the payee is empty: give a P2PKH address or a locking script in hex"));
    }
    if to.len() > 2 * MAX_PAYEE_SCRIPT {
        return Err(invalid("a payee's locking script is at most 10000 bytes"));
    }
    let bytes = hex::decode(to).map_err(|_| invalid("the payee is not a valid address and not hex"))?;
    let script = Script::new(bytes);
    if script.chunks().is_err() {
        return Err(invalid("the payee's script does not parse (a push runs past its end)"));
    }
    Ok((None, script))
}

/// The P2PKH locking script an address stands for.
pub fn locking_script_of(address: &str) -> Result<Script> {
    let (_, hash) = parse_p2pkh_address(address)?;
    Ok(Script::p2pkh_lock(&hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_addresses_round_trip() {
        // HASH160 of the compressed public key of private key 1, and its well-known addresses.
        let hash: [u8; 20] = hex::decode("751e76e8199196d454941c45d1b3a323f1433bd6").unwrap().try_into().unwrap();
        assert_eq!(p2pkh_address(&hash, Network::Mainnet), "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH");
        assert_eq!(p2pkh_address(&hash, Network::Testnet), "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r");
        assert_eq!(parse_p2pkh_address("1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH").unwrap(), (Network::Mainnet, hash));
        assert_eq!(parse_p2pkh_address("mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r").unwrap(), (Network::Testnet, hash));
    }

    #[test]
    fn payees_are_addresses_with_their_network_or_scripts_that_parse() {
        assert_eq!(payee("1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH").unwrap().0, Some(Network::Mainnet));
        assert_eq!(payee(" mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r ").unwrap().0, Some(Network::Testnet));
        assert_eq!(payee("51").unwrap(), (None, Script::new(vec![0x51])));
        for bad in ["", "zz", "4c", "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMX", &"00".repeat(MAX_PAYEE_SCRIPT + 1)] {
            assert_eq!(payee(bad).unwrap_err().kind(), ErrorKind::InvalidInput, "{bad:.20}");
        }
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in ["", "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMJ", "0OIl", "1111", &"z".repeat(200)] {
            assert_eq!(parse_p2pkh_address(bad).unwrap_err().kind(), ErrorKind::InvalidInput, "{bad}");
        }
        assert_eq!(base58_decode("11").unwrap(), vec![0, 0]);
        assert_eq!(base58_encode(&[0, 0, 1]), "112");
    }
}
