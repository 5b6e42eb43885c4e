//! The store file: its JSON layout, parsing with validation, and atomic replacement.
//!
//! Everything here is blocking `std::fs`; the store runs it on Tokio's blocking pool.

use std::{
    collections::{BTreeMap, VecDeque},
    fmt, fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use wallet_traits::{Error, ErrorKind, ExecutionId, KeyId, Result, ShareMeta, ShareState, StoredShare, WalletId};

use crate::JSONFILE_SCHEME;

/// The layout version this release writes. Format 2 added `used` to derivation entries.
pub(crate) const FILE_FORMAT: u32 = 2;

/// The layout before derivation-cache recency, still read: its entries count as used in file
/// order.
const FORMAT_WITHOUT_RECENCY: u32 = 1;

/// The store's contents, parsed and validated.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) shares: BTreeMap<KeyId, StoredShare>,
    pub(crate) derivations: BTreeMap<(KeyId, Vec<u8>), Derivation>,
    pub(crate) primes: BTreeMap<String, VecDeque<Vec<u8>>>,
    /// The highest `used` of any derivation entry: the last use handed out.
    last_use: u64,
}

/// A derivation-cache entry.
pub(crate) struct Derivation {
    pub(crate) sealed: Vec<u8>,
    /// When it was last used (a hit or a put), as a count of uses, not a time: an exact order.
    pub(crate) used: u64,
}

impl State {
    /// The number of a new use, above every stored one.
    pub(crate) fn next_use(&mut self) -> u64 {
        self.last_use += 1;
        self.last_use
    }
}

impl fmt::Debug for State {
    // Counts only: the entries are sealed bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("shares", &self.shares.len())
            .field("derivations", &self.derivations.len())
            .field("prime_pools", &self.primes.len())
            .finish()
    }
}

/// The file as JSON (format 2, or format 1, which lacks derivation entries' `used`). Byte
/// strings are hex. A separate type from [`State`] so the layout on disk
/// stays fixed whatever the serde derives of `wallet-traits` do.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV2 {
    format: u32,
    shares: Vec<ShareEntry>,
    derivations: Vec<DerivationEntry>,
    /// Pool name to its pairs, oldest first.
    primes: BTreeMap<String, Vec<Hex>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareEntry {
    wallet_id: String,
    key_index: u32,
    version: u64,
    format_version: u16,
    party_index: u16,
    threshold: u16,
    parties: u16,
    state: String,
    public_key: Hex,
    execution_id: Hex,
    sealed: Hex,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DerivationEntry {
    wallet_id: String,
    key_index: u32,
    lookup: Hex,
    sealed: Hex,
    /// Absent in format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    used: Option<u64>,
}

/// Bytes as a hex string. The error on bad input never repeats the input: it may be sealed data.
struct Hex(Vec<u8>);

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map(Hex).map_err(|_| serde::de::Error::custom("expected a string of hex digit pairs"))
    }
}

/// Only the format field, read first so a newer layout gets "upgrade" rather than "corrupted".
#[derive(Deserialize)]
struct FormatProbe {
    format: Option<u32>,
}

impl State {
    /// Parses and validates the file's bytes.
    pub(crate) fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            // This store never writes an empty file (it replaces the file whole), so an empty one
            // was truncated or made by hand. Taking it for an empty store would hide lost shares.
            return Err(corrupted(
                "the store file is empty; restore it from a backup, or delete it to start an empty store",
                path,
            ));
        }
        let probe: FormatProbe = serde_json::from_slice(bytes).map_err(|e| json_error(&e, path))?;
        match probe.format {
            Some(FILE_FORMAT | FORMAT_WITHOUT_RECENCY) => {}
            Some(newer) if newer > FILE_FORMAT => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "the store file was written by a newer release of the JSON-file store; run that release",
                )
                .with_context("backend", JSONFILE_SCHEME)
                .with_context("path", path.display())
                .with_context("format", newer)
                .with_context("supported_format", FILE_FORMAT))
            }
            _ => return Err(corrupted("the store file has no valid \"format\" field; restore it from a backup", path)),
        }
        let file: FileV2 = serde_json::from_slice(bytes).map_err(|e| json_error(&e, path))?;
        Self::from_file(file, path)
    }

    fn from_file(file: FileV2, path: &Path) -> Result<Self> {
        let mut state = State::default();
        for (i, e) in file.shares.into_iter().enumerate() {
            let bad = |what: &str| entry_error(what, "shares", i, path);
            let key = KeyId::new(WalletId::new(e.wallet_id).map_err(|_| bad("an invalid wallet_id"))?, e.key_index);
            let state_name = ShareState::parse(&e.state).map_err(|_| bad("an unknown state"))?;
            let execution_id: [u8; 32] =
                e.execution_id.0.try_into().map_err(|_| bad("an execution_id not 32 bytes"))?;
            if e.version == 0 {
                return Err(bad("version 0 (versions start at 1)"));
            }
            let record = StoredShare {
                key: key.clone(),
                meta: ShareMeta {
                    public_key: e.public_key.0,
                    threshold: e.threshold,
                    parties: e.parties,
                    party_index: e.party_index,
                    state: state_name,
                    execution_id: ExecutionId::from_bytes(execution_id),
                },
                version: e.version,
                format_version: e.format_version,
                sealed: e.sealed.0,
            };
            if state.shares.insert(key, record).is_some() {
                return Err(bad("a key that an earlier entry already has"));
            }
        }
        for (i, e) in file.derivations.into_iter().enumerate() {
            let bad = |what: &str| entry_error(what, "derivations", i, path);
            let key = KeyId::new(WalletId::new(e.wallet_id).map_err(|_| bad("an invalid wallet_id"))?, e.key_index);
            let used = match (file.format, e.used) {
                (FORMAT_WITHOUT_RECENCY, _) => i as u64 + 1,
                (_, Some(used)) => used,
                (_, None) => return Err(bad("no used")),
            };
            state.last_use = state.last_use.max(used);
            if state.derivations.insert((key, e.lookup.0), Derivation { sealed: e.sealed.0, used }).is_some() {
                return Err(bad("a key and lookup that an earlier entry already has"));
            }
        }
        for (pool, pairs) in file.primes {
            if !pairs.is_empty() {
                state.primes.insert(pool, pairs.into_iter().map(|h| h.0).collect());
            }
        }
        Ok(state)
    }

    /// The file's bytes: pretty-printed, so an operator can inspect the (sealed) contents.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let file = FileV2 {
            format: FILE_FORMAT,
            shares: self
                .shares
                .values()
                .map(|r| ShareEntry {
                    wallet_id: r.key.wallet.to_string(),
                    key_index: r.key.index,
                    version: r.version,
                    format_version: r.format_version,
                    party_index: r.meta.party_index,
                    threshold: r.meta.threshold,
                    parties: r.meta.parties,
                    state: r.meta.state.as_str().to_string(),
                    public_key: Hex(r.meta.public_key.clone()),
                    execution_id: Hex(r.meta.execution_id.as_bytes().to_vec()),
                    sealed: Hex(r.sealed.clone()),
                })
                .collect(),
            derivations: self
                .derivations
                .iter()
                .map(|((key, lookup), d)| DerivationEntry {
                    wallet_id: key.wallet.to_string(),
                    key_index: key.index,
                    lookup: Hex(lookup.clone()),
                    sealed: Hex(d.sealed.clone()),
                    used: Some(d.used),
                })
                .collect(),
            primes: self
                .primes
                .iter()
                .map(|(pool, pairs)| (pool.clone(), pairs.iter().map(|p| Hex(p.clone())).collect()))
                .collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).expect("the store file's types always serialize");
        bytes.push(b'\n');
        bytes
    }
}

/// Reads and parses the store file. A missing file is a `Storage` error: the store checked it
/// exists when it opened, so it went away behind the store's back.
pub(crate) fn read(path: &Path) -> Result<State> {
    let bytes = fs::read(path).map_err(|e| {
        let hint = if e.kind() == io::ErrorKind::NotFound {
            "the store file is gone although it existed when the store was opened; restore it from a backup"
        } else {
            "could not read the store file; check that it is readable by this process"
        };
        io_error(hint, path, e)
    })?;
    State::parse(&bytes, path)
}

/// Replaces the file at `path` with `bytes` so that a crash at any point leaves either the old or
/// the new file: write a temporary file in the same directory, fsync it, rename it over `path`,
/// fsync the directory. The new file is owner-only on Unix.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let written = (|| {
        // A temporary file left by a crash is stale; start afresh so create_new applies the mode.
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(
            "could not write the store file; check the directory's permissions and free space",
            path,
            e,
        ));
    }
    // Without this the rename itself may not survive a power cut.
    sync_dir(&parent_dir(path)).map_err(|e| {
        io_error("wrote the store file but could not flush its directory; the last change may not be durable", path, e)
    })
}

/// Creates the file at `path` holding an empty store, unless a file is already there. Opening
/// with `create_new` (`O_EXCL`) means creating a store can never overwrite an existing one, even
/// when the file appears between a check and the write.
pub(crate) fn create_empty(path: &Path) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => {
            return Err(io_error("could not create the store file; check the permissions of its directory", path, e))
        }
    };
    // A crash before the sync leaves an empty or partial file. Opening refuses it as corrupted,
    // and deleting it loses nothing: no share was written yet.
    let written = file.write_all(&State::default().to_bytes()).and_then(|()| file.sync_all());
    written
        .and_then(|()| sync_dir(&parent_dir(path)))
        .map_err(|e| io_error("could not write the new store file", path, e))?;
    Ok(())
}

/// Creates the parent directory of `path` (owner-only on Unix) when missing.
pub(crate) fn create_parent_dir(path: &Path) -> Result<()> {
    let dir = parent_dir(path);
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir).map_err(|e| {
        io_error("could not create the store file's directory; check the permissions of its parent", &dir, e)
    })
}

/// The temporary file beside `path`: `.NAME.tmp`.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Windows cannot open a directory as a file; its rename is durable once it returns.
    Ok(())
}

pub(crate) fn io_error(message: &str, path: &Path, e: io::Error) -> Error {
    Error::new(ErrorKind::Storage, message)
        .with_context("backend", JSONFILE_SCHEME)
        .with_context("path", path.display())
        .with_source(e)
}

fn corrupted(message: &str, path: &Path) -> Error {
    Error::new(ErrorKind::Corrupted, message)
        .with_context("backend", JSONFILE_SCHEME)
        .with_context("path", path.display())
}

fn entry_error(what: &str, list: &'static str, index: usize, path: &Path) -> Error {
    corrupted(&format!("a {list} entry of the store file has {what}; restore the file from a backup"), path)
        .with_context("entry", format!("{list}[{index}]"))
}

/// A JSON error without the offending text: serde quotes string values in its messages
/// (`invalid type: string "..."`), and a string in this file may be sealed bytes.
fn json_error(e: &serde_json::Error, path: &Path) -> Error {
    let detail = e.to_string();
    let detail = detail.split(" at line ").next().unwrap_or_default();
    let detail = if detail.contains('"') { "a value has the wrong type" } else { detail };
    corrupted("the store file does not parse; restore it from a backup", path)
        .with_context("problem", detail)
        .with_context("line", e.line())
        .with_context("column", e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        let mut state = State::default();
        let key = KeyId::new(WalletId::new("w").unwrap(), 7);
        let record = StoredShare {
            key: key.clone(),
            meta: ShareMeta {
                public_key: vec![2; 33],
                threshold: 2,
                parties: 3,
                party_index: 1,
                state: ShareState::Pending,
                execution_id: ExecutionId::from_bytes([9; 32]),
            },
            version: 4,
            format_version: 1,
            sealed: vec![0, 1, 2, 255],
        };
        state.shares.insert(key.clone(), record);
        state.derivations.insert((key, vec![0xAB]), Derivation { sealed: vec![0, 0], used: 3 });
        state.primes.insert("pool".to_string(), VecDeque::from([vec![1], vec![2]]));
        state
    }

    fn parse(text: &str) -> Result<State> {
        State::parse(text.as_bytes(), Path::new("/x/store.json"))
    }

    #[test]
    fn round_trips() {
        let bytes = sample().to_bytes();
        let back = State::parse(&bytes, Path::new("x")).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(back.shares.values().next().unwrap().sealed, vec![0, 1, 2, 255]);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains(r#""sealed": "000102ff""#), "{text}");
        assert!(text.contains(r#""state": "pending""#), "{text}");
    }

    #[test]
    fn refuses_empty_garbled_and_inconsistent_files() {
        let good = String::from_utf8(sample().to_bytes()).unwrap();
        let cases = [
            ("", "empty"),
            ("  \n", "empty"),
            ("{", "parse"),
            (r#"{"shares": []}"#, "format"),
            (&good.replace(r#""state": "pending""#, r#""state": "bogus""#), "unknown state"),
            (&good.replace(r#""wallet_id": "w""#, r#""wallet_id": "a b""#), "invalid wallet_id"),
            (&good.replace("000102ff", "00zz"), "parse"),
            (&good.replace(r#""version": 4"#, r#""version": 0"#), "version 0"),
            (&good.replace(r#""format": 2,"#, r#""format": 2, "extra": 1,"#), "parse"),
            (&good.replace(r#""used": 3"#, r#""other": 3"#), "parse"),
        ];
        for (text, expected) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupted, "{text}: {e}");
            assert!(e.to_string().contains(expected), "{e}");
            assert_eq!(e.context_value("path"), Some("/x/store.json"));
        }
        let mut twice: serde_json::Value = serde_json::from_str(&good).unwrap();
        let shares = twice["shares"].as_array_mut().unwrap();
        shares.push(shares[0].clone());
        let e = parse(&twice.to_string()).unwrap_err();
        assert!(e.to_string().contains("already has"), "{e}");
        assert_eq!(e.context_value("entry"), Some("shares[1]"));
        // Format 2 needs every derivation entry's last use.
        let mut unused: serde_json::Value = serde_json::from_str(&good).unwrap();
        unused["derivations"][0].as_object_mut().unwrap().remove("used");
        let e = parse(&unused.to_string()).unwrap_err();
        assert!(e.to_string().contains("no used"), "{e}");
        assert_eq!(e.context_value("entry"), Some("derivations[0]"));
    }

    #[test]
    fn newer_format_asks_for_the_newer_release() {
        let e = parse(r#"{"format": 3, "something": "new"}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.message().contains("newer release"), "{e}");
    }

    #[test]
    fn format_1_files_count_their_derivations_used_in_file_order() {
        let text = r#"{"format": 1, "shares": [], "primes": {}, "derivations": [
            {"wallet_id": "w", "key_index": 0, "lookup": "bb", "sealed": "01"},
            {"wallet_id": "w", "key_index": 0, "lookup": "aa", "sealed": "02"}]}"#;
        let mut state = parse(text).unwrap();
        let key = KeyId::new(WalletId::new("w").unwrap(), 0);
        let used = |state: &State, lookup: u8| state.derivations[&(key.clone(), vec![lookup])].used;
        assert_eq!((used(&state, 0xBB), used(&state, 0xAA)), (1, 2));
        assert_eq!(state.next_use(), 3, "new uses come after the old entries");
        let written = String::from_utf8(state.to_bytes()).unwrap();
        assert!(written.contains(r#""format": 2"#) && written.contains(r#""used": 1"#), "{written}");
    }

    #[test]
    fn parse_errors_do_not_repeat_values() {
        let good = String::from_utf8(sample().to_bytes()).unwrap();
        let e = parse(&good.replace(r#""key_index": 7"#, r#""key_index": "SEALED-MARKER""#)).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("SEALED-MARKER"), "{e}");
        assert_eq!(e.kind(), ErrorKind::Corrupted);
        let e = parse(&good.replace("000102ff", "SEALED-MARKER")).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("SEALED-MARKER"), "{e}");
    }

    #[test]
    fn atomic_write_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/store.json");
        create_parent_dir(&path).unwrap();
        fs::write(temp_path(&path), b"stale").unwrap();
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!temp_path(&path).exists(), "the temporary file must be renamed away");
    }

    #[test]
    fn relative_paths_use_the_working_directory() {
        assert_eq!(parent_dir(Path::new("store.json")), PathBuf::from("."));
        assert_eq!(temp_path(Path::new("store.json")), PathBuf::from(".store.json.tmp"));
        assert_eq!(temp_path(Path::new("/a/b.json")), PathBuf::from("/a/.b.json.tmp"));
    }
}
