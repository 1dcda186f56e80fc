//! The secrets vault: one age-encrypted file, `$CLUTCH_HOME/vault.age`, outside the log.
//!
//! It is unlocked by `CLUTCH_SECRET_KEY` (an age identity `AGE-SECRET-KEY-1…`, or any other
//! text as a passphrase) or `CLUTCH_SECRET_KEY_FILE` (an identity file as `age-keygen` writes
//! it). The plaintext is a JSON document, so the `age` and `rage` tools open it too:
//! `age -d -i key.txt ~/.config/clutch/vault.age`.
//!
//! Each secret carries a random salt; its fingerprint is the first 16 hex digits of
//! SHA-256(salt ‖ value). The fingerprint names one version of a secret in RUN_STARTED without
//! letting anyone who reads the log test guesses of the value. Agent signing keys live here
//! as `key/<agent>-<key id>` when the vault is in use (see [`crate::sign::KeyStore`]).
//!
//! Writes are whole-file: encrypt, write a 0600 temporary, sync, rename, under a lock file,
//! so a crash or a concurrent writer never leaves a half-written or lost vault.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::env::{Env, SecretText};
use crate::{Error, Result};

/// How an agent definition's setting names a vault secret: `secret:NAME`.
pub const SECRET_REF: &str = "secret:";

/// The file's name under `$CLUTCH_HOME`.
pub const FILE: &str = "vault.age";

/// Names under this prefix are agent signing keys, written by clutch only.
pub const KEY_PREFIX: &str = "key/";

/// scrypt work factor for a passphrase vault: 2^16 (64 MiB, a fraction of a second here), so
/// commands that sign as an agent stay usable. An identity is both faster and stronger.
const SCRYPT_LOG_N: u8 = 16;

const FORMAT: &str = "clutch-vault/1";

/// What unlocks the vault.
pub enum VaultKey {
    Identity(Box<age::x25519::Identity>),
    Passphrase(SecretString),
}

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VaultKey::Identity(_) => "VaultKey::Identity(…)",
            VaultKey::Passphrase(_) => "VaultKey::Passphrase(…)",
        })
    }
}

impl VaultKey {
    /// An identity when the text is one (the first `AGE-SECRET-KEY-` line of an identity file
    /// also counts), a passphrase otherwise.
    pub fn parse(text: &SecretText) -> Result<VaultKey> {
        let text = text.expose();
        let identity_line = text.lines().map(str::trim).find(|l| l.starts_with("AGE-SECRET-KEY-"));
        if let Some(line) = identity_line {
            return age::x25519::Identity::from_str(line).map(|id| VaultKey::Identity(Box::new(id))).map_err(|_| {
                Error::user("CLUTCH_SECRET_KEY holds an AGE-SECRET-KEY line that is not a valid age identity")
                    .hint("make one with: age-keygen -o key.txt, then set CLUTCH_SECRET_KEY_FILE=key.txt")
            });
        }
        let passphrase = text.trim_end_matches(['\n', '\r']);
        if passphrase.chars().count() < 8 {
            return Err(Error::user("CLUTCH_SECRET_KEY is too short for a passphrase (fewer than 8 characters)")
                .hint("use a longer passphrase, or an age identity from age-keygen"));
        }
        Ok(VaultKey::Passphrase(SecretString::from(passphrase.to_string())))
    }

    fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let encryptor = match self {
            VaultKey::Identity(id) => {
                let recipient = id.to_public();
                age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            }
            VaultKey::Passphrase(pass) => {
                let mut recipient = age::scrypt::Recipient::new(pass.clone());
                recipient.set_work_factor(SCRYPT_LOG_N);
                age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            }
        }
        .map_err(|err| Error::internal(format!("cannot encrypt the vault: {err}")))?;
        let mut out = Vec::new();
        let mut writer = encryptor.wrap_output(&mut out).map_err(|err| Error::internal(format!("cannot encrypt the vault: {err}")))?;
        writer
            .write_all(plaintext)
            .and_then(|_| writer.finish().map(|_| ()))
            .map_err(|err| Error::internal(format!("cannot encrypt the vault: {err}")))?;
        Ok(out)
    }

    fn decrypt(&self, path: &Path, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let corrupt = |err: &dyn std::fmt::Display| {
            Error::user(format!("{} is not an age file clutch can read: {err}", path.display()))
                .hint("restore it from a backup, or move it away to start an empty vault")
        };
        let decryptor = age::Decryptor::new_buffered(ciphertext).map_err(|err| corrupt(&err))?;
        let wrong = || {
            Error::user(format!("CLUTCH_SECRET_KEY does not open the vault {}", path.display()))
                .hint("set CLUTCH_SECRET_KEY (or CLUTCH_SECRET_KEY_FILE) to the identity or passphrase the vault was made with")
        };
        let reader = match self {
            VaultKey::Identity(id) => {
                if decryptor.is_scrypt() {
                    return Err(Error::user(format!(
                        "CLUTCH_SECRET_KEY is an age identity, but the vault {} is locked by a passphrase",
                        path.display()
                    ))
                    .hint("set CLUTCH_SECRET_KEY to the vault's passphrase"));
                }
                decryptor.decrypt(std::iter::once(id.as_ref() as &dyn age::Identity))
            }
            VaultKey::Passphrase(pass) => {
                if !decryptor.is_scrypt() {
                    return Err(Error::user(format!(
                        "CLUTCH_SECRET_KEY is a passphrase, but the vault {} is locked by an age identity",
                        path.display()
                    ))
                    .hint("set CLUTCH_SECRET_KEY_FILE to the vault's identity file (or CLUTCH_SECRET_KEY to its AGE-SECRET-KEY line)"));
                }
                let mut identity = age::scrypt::Identity::new(pass.clone());
                identity.set_max_work_factor(SCRYPT_LOG_N.max(22));
                decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity))
            }
        };
        let mut reader = reader.map_err(|err| match err {
            age::DecryptError::NoMatchingKeys | age::DecryptError::DecryptionFailed => wrong(),
            other => corrupt(&other),
        })?;
        let mut plain = Zeroizing::new(Vec::new());
        reader.read_to_end(&mut plain).map_err(|err| corrupt(&err))?;
        Ok(plain)
    }
}

/// One secret: its value and what names this version of it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Entry {
    pub value: String,
    /// 16 random bytes, hex: salts the fingerprint.
    pub salt: String,
    /// When this value was set (RFC 3339).
    pub set_at: String,
    /// 1 for the first value, one more at each rotation.
    pub version: u32,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").field("fingerprint", &self.fingerprint()).field("version", &self.version).finish_non_exhaustive()
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.value);
    }
}

impl Entry {
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.salt.as_bytes());
        hasher.update([0]);
        hasher.update(self.value.as_bytes());
        hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Serialize, Deserialize)]
struct Doc {
    format: String,
    secrets: BTreeMap<String, Entry>,
}

/// An open vault: the decrypted secrets and the key to write them back with.
#[derive(Debug)]
pub struct Vault {
    path: PathBuf,
    key: VaultKey,
    secrets: BTreeMap<String, Entry>,
}

/// A secret's name and fingerprint, for listing and for RUN_STARTED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub name: String,
    pub fingerprint: String,
    pub version: u32,
    pub set_at: String,
}

/// Whether `name` may name a secret a person sets: letters, digits, `_ . -`, at most 64.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::user(format!("'{name}' is not a secret name"))
            .hint("use letters, digits, '_', '.' and '-' (at most 64), e.g. OPENAI_API_KEY"))
    }
}

impl Vault {
    pub fn path_in(env: &Env) -> PathBuf {
        env.home.join(FILE)
    }

    /// The key from the environment, or an error saying how to give one.
    pub fn key_of(env: &Env) -> Result<VaultKey> {
        match env.secret_key()? {
            Some(text) => VaultKey::parse(&text),
            None => Err(Error::user("the vault is locked: CLUTCH_SECRET_KEY is not set").hint(
                "set CLUTCH_SECRET_KEY to an age identity (age-keygen) or a passphrase, or CLUTCH_SECRET_KEY_FILE to an identity file",
            )),
        }
    }

    /// Open the vault with the environment's key; a vault not yet written is empty.
    pub fn open(env: &Env) -> Result<Vault> {
        let key = Vault::key_of(env)?;
        Vault::open_with(Vault::path_in(env), key)
    }

    /// The vault when a key is set, `None` when none is (so callers can fall back).
    pub fn open_if_unlocked(env: &Env) -> Result<Option<Vault>> {
        if env.secret_key()?.is_none() {
            return Ok(None);
        }
        Vault::open(env).map(Some)
    }

    pub fn open_with(path: PathBuf, key: VaultKey) -> Result<Vault> {
        let secrets = match fs::read(&path) {
            Ok(bytes) => {
                let plain = key.decrypt(&path, &bytes)?;
                let doc: Doc = serde_json::from_slice(&plain).map_err(|err| {
                    // serde's message can quote a value of the file: say where, never what.
                    let what = match err.classify() {
                        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON",
                        _ => "not the vault's JSON layout",
                    };
                    Error::user(format!(
                        "{} opened, but its contents are not a clutch vault ({what} at line {}, column {})",
                        path.display(),
                        err.line(),
                        err.column()
                    ))
                    .hint("restore it from a backup")
                })?;
                if doc.format != FORMAT {
                    return Err(Error::user(format!("{} is a '{}' vault; this clutch reads {FORMAT}", path.display(), doc.format))
                        .hint("use the clutch that wrote it"));
                }
                doc.secrets
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(err) => return Err(Error::user(format!("cannot read the vault {}: {err}", path.display()))),
        };
        Ok(Vault { path, key, secrets })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.secrets.get(name)
    }

    pub fn list(&self) -> Vec<Listed> {
        self.secrets
            .iter()
            .map(|(name, e)| Listed { name: name.clone(), fingerprint: e.fingerprint(), version: e.version, set_at: e.set_at.clone() })
            .collect()
    }

    /// Set `name` to `value` (a new salt, the version one more than before).
    pub fn set(&mut self, name: &str, value: String, now: i64) -> Result<Listed> {
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt).map_err(|err| Error::internal(format!("no randomness for a salt: {err}")))?;
        let version = self.secrets.get(name).map_or(1, |e| e.version + 1);
        let entry = Entry { value, salt: salt.iter().map(|b| format!("{b:02x}")).collect(), set_at: crate::env::format_time(now), version };
        let listed = Listed { name: name.to_string(), fingerprint: entry.fingerprint(), version, set_at: entry.set_at.clone() };
        self.secrets.insert(name.to_string(), entry);
        Ok(listed)
    }

    pub fn remove(&mut self, name: &str) -> bool {
        self.secrets.remove(name).is_some()
    }

    /// Lock the vault file against other writers, re-read it under the lock, apply `edit`,
    /// write it back. Returns what `edit` returned.
    pub fn edit<T>(env: &Env, edit: impl FnOnce(&mut Vault) -> Result<T>) -> Result<T> {
        let key = Vault::key_of(env)?;
        let path = Vault::path_in(env);
        let _lock = Lock::take(&path)?;
        let mut vault = Vault::open_with(path, key)?;
        let out = edit(&mut vault)?;
        vault.save()?;
        Ok(out)
    }

    /// Encrypt to `new_key` from now on (the secrets stay as they are).
    pub fn rekey(env: &Env, new_key: VaultKey) -> Result<usize> {
        Vault::edit(env, |vault| {
            vault.key = new_key;
            Ok(vault.secrets.len())
        })
    }

    /// Write the vault: encrypt, 0600 temporary, sync, rename. Callers hold the lock.
    fn save(&self) -> Result<()> {
        let doc = Doc { format: FORMAT.to_string(), secrets: self.secrets.clone() };
        let plain =
            Zeroizing::new(serde_json::to_vec_pretty(&doc).map_err(|err| Error::internal(format!("cannot encode the vault: {err}")))?);
        let ciphertext = self.key.encrypt(&plain)?;
        if let Some(dir) = self.path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|err| Error::user(format!("cannot create {}: {err}", dir.display())))?;
        }
        let tmp = self.path.with_extension(format!("age.tmp{}", std::process::id()));
        let written = (|| -> std::io::Result<()> {
            let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            file.write_all(&ciphertext)?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            // The rename itself must survive a crash too (a refreshed token lives only here).
            match self.path.parent() {
                Some(dir) => fs::File::open(dir)?.sync_all(),
                None => Ok(()),
            }
        })();
        if let Err(err) = written {
            let _ = fs::remove_file(&tmp);
            return Err(Error::user(format!("cannot write the vault {}: {err}", self.path.display())));
        }
        Ok(())
    }
}

use std::os::unix::fs::DirBuilderExt;

/// An exclusive `flock` on `vault.age.lock`, held while one process rewrites the vault. The
/// kernel lets go of it when the process ends however it ends, so a killed clutch never leaves
/// the vault locked; the file itself stays (removing it would let two writers lock two files).
struct Lock(#[allow(dead_code, reason = "held for its lock, released when dropped")] fs::File);

impl Lock {
    fn take(vault: &Path) -> Result<Lock> {
        let path = vault.with_extension("age.lock");
        if let Some(dir) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|err| Error::user(format!("cannot create {}: {err}", dir.display())))?;
        }
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|err| Error::user(format!("cannot lock the vault ({}): {err}", path.display())))?;
        let started = crate::env::monotonic();
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(Lock(file)),
                Err(rustix::io::Errno::WOULDBLOCK) if started.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(Error::conflict(format!("the vault is being written by another clutch (it holds {})", path.display()))
                        .hint("wait for it to finish, then run this again"))
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(err) => return Err(Error::user(format!("cannot lock the vault ({}): {err}", path.display()))),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn key(text: &str) -> VaultKey {
        VaultKey::parse(&SecretText::new(text.to_string())).unwrap()
    }

    #[test]
    fn round_trip_with_an_identity_and_refuses_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.age");
        let identity = age::x25519::Identity::generate();
        let text = age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_string();
        let mut vault = Vault::open_with(path.clone(), key(&text)).unwrap();
        let listed = vault.set("TOKEN", "s3cret-value".into(), 0).unwrap();
        vault.save().unwrap();
        let bytes = fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"age-encryption.org/v1"));
        assert!(!bytes.windows(12).any(|w| w == b"s3cret-value"));
        let again = Vault::open_with(path.clone(), key(&text)).unwrap();
        assert_eq!(again.get("TOKEN").unwrap().value, "s3cret-value");
        assert_eq!(again.list()[0].fingerprint, listed.fingerprint);
        let other = age::x25519::Identity::generate();
        let other = age::secrecy::ExposeSecret::expose_secret(&other.to_string()).to_string();
        let err = Vault::open_with(path.clone(), key(&other)).unwrap_err();
        assert!(err.to_string().contains("does not open the vault"), "{err}");
        let err = Vault::open_with(path, key("a passphrase long enough")).unwrap_err();
        assert!(err.to_string().contains("locked by an age identity"), "{err}");
    }

    #[test]
    fn passphrase_vault_and_fingerprints_change_with_each_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.age");
        let mut vault = Vault::open_with(path.clone(), key("correct horse battery")).unwrap();
        let first = vault.set("A", "value-one".into(), 0).unwrap();
        let second = vault.set("A", "value-one".into(), 0).unwrap();
        assert_ne!(first.fingerprint, second.fingerprint, "a new salt each time");
        assert_eq!(second.version, 2);
        vault.save().unwrap();
        assert!(Vault::open_with(path.clone(), key("correct horse battery")).unwrap().get("A").is_some());
        let err = Vault::open_with(path, key("wrong horse battery")).unwrap_err();
        assert!(err.to_string().contains("does not open"), "{err}");
        assert!(VaultKey::parse(&SecretText::new("short".into())).is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("OPENAI_API_KEY").is_ok());
        assert!(check_name("a b").is_err());
        assert!(check_name("key/x").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn the_lock_is_the_kernels_a_left_file_does_not_hold_it_and_a_holder_excludes_others() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("vault.age");
        // A lock file a killed clutch left behind: no one holds it.
        fs::write(vault.with_extension("age.lock"), b"").unwrap();
        let held = Lock::take(&vault).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let other = vault.clone();
        let waiter = std::thread::spawn(move || {
            let second = Lock::take(&other).map(|_| ());
            tx.send(()).unwrap();
            second
        });
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "a second writer waits while the first holds the lock");
        drop(held);
        assert!(rx.recv_timeout(Duration::from_secs(5)).is_ok(), "and gets it once the first lets go");
        waiter.join().unwrap().unwrap();
    }
}
