//! Ed25519 keys: the public half as the log records it (`ssh-ed25519 AAAA…`), the private half
//! as an OpenSSH key file on this machine only.
//!
//! Private keys live under `$CLUTCH_HOME/keys/<agent>-<key-id>` (mode 0600, directory 0700),
//! or, when the vault is unlocked (`CLUTCH_SECRET_KEY`), in the vault as `key/<agent>-<key-id>`
//! with only the `.pub` file on disk: then an agent process, which never gets the vault's key,
//! cannot read any signing key. The name carries the key's id so two orgs with an agent of the
//! same name never overwrite each other's keys. A person's existing key (`--key
//! ~/.ssh/id_ed25519`) is not copied: the entry is a symlink to it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::sshsig::public_key_blob;
use crate::env::Env;
use crate::vault::Vault;
use crate::{Error, Result};

/// An Ed25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, ed25519_dalek::SignatureError> {
        VerifyingKey::from_bytes(bytes).map(PublicKey)
    }

    pub fn of(key: &SigningKey) -> Self {
        PublicKey(key.verifying_key())
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }

    /// `ssh-ed25519 AAAA…`, without a comment: the form the log stores.
    pub fn to_openssh(&self) -> String {
        format!("ssh-ed25519 {}", Base64::encode_string(&public_key_blob(&self.0)))
    }

    /// Parse `ssh-ed25519 AAAA… [comment]`.
    pub fn parse_openssh(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::user(format!("not an Ed25519 public key: {why}"))
                .hint("give the contents of an id_ed25519.pub file, like 'ssh-ed25519 AAAAC3Nz…'")
        };
        match text.split_whitespace().next() {
            Some("ssh-ed25519") => {}
            Some(other) if other.starts_with("ssh-") || other.starts_with("ecdsa-") => {
                return Err(bad(&format!("'{other}' keys are not supported, only ssh-ed25519")))
            }
            _ => return Err(bad("it does not start with 'ssh-ed25519'")),
        }
        let bytes = crate::event::ed25519_key_bytes(text).map_err(|why| bad(&why))?;
        PublicKey::from_bytes(&bytes).map_err(|_| bad("the key is not a valid curve point"))
    }

    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(public_key_blob(&self.0));
        format!("SHA256:{}", Base64::encode_string(&digest).trim_end_matches('='))
    }

    /// A short hex id of the key, for file names.
    pub fn key_id(&self) -> String {
        let digest = Sha256::digest(public_key_blob(&self.0));
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The private keys this machine holds.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
    /// The environment whose vault holds keys, when keys may live in the vault.
    env: Option<Env>,
    /// The vault as last read, so a command that signs many times decrypts it once (with a
    /// passphrase that is a scrypt each time). Dropped whenever this store writes the vault.
    opened: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<Vault>>>>,
}

impl KeyStore {
    /// Key files under `dir` only.
    pub fn new(dir: PathBuf) -> Self {
        KeyStore { dir, env: None, opened: Default::default() }
    }

    /// Key files under `$CLUTCH_HOME/keys`, and the vault when it is unlocked.
    pub fn for_env(env: &Env) -> Self {
        KeyStore { dir: env.keys_dir(), env: Some(env.clone()), opened: Default::default() }
    }

    /// The vault's name for `agent`'s key.
    pub fn vault_name(agent: &str, key: &PublicKey) -> String {
        format!("{}{agent}-{}", crate::vault::KEY_PREFIX, key.key_id())
    }

    /// The unlocked vault, read once per store.
    fn vault(&self, env: &Env) -> Result<std::sync::Arc<Vault>> {
        let mut opened = self.opened.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(vault) = opened.as_ref() {
            return Ok(vault.clone());
        }
        let vault = std::sync::Arc::new(Vault::open(env)?);
        *opened = Some(vault.clone());
        Ok(vault)
    }

    fn forget_vault(&self) {
        *self.opened.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    fn unlocked(&self) -> Result<Option<&Env>> {
        match &self.env {
            Some(env) if env.secret_key()?.is_some() => Ok(Some(env)),
            _ => Ok(None),
        }
    }

    /// Whether this machine holds the private key (a file, or an entry of the unlocked vault).
    /// A key that does not open the vault is an error, not a "no".
    pub fn holds(&self, agent: &str, key: &PublicKey) -> Result<bool> {
        if self.path_for(agent, key).exists() {
            return Ok(true);
        }
        match self.unlocked()? {
            Some(env) => Ok(self.vault(env)?.get(&KeyStore::vault_name(agent, key)).is_some()),
            None => Ok(false),
        }
    }

    /// Move every plain key file into the unlocked vault, leaving the `.pub` files; links to a
    /// person's own keys stay as they are. Returns the names moved.
    pub fn import_into_vault(&self) -> Result<Vec<String>> {
        let env = self
            .unlocked()?
            .ok_or_else(|| Error::user("the vault is locked: CLUTCH_SECRET_KEY is not set").hint("set it, then run this again"))?;
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(Error::user(format!("cannot read {}: {err}", self.dir.display()))),
        };
        let mut plain = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if !is_file || name.ends_with(".pub") || name.contains(".tmp") {
                continue;
            }
            let text = fs::read_to_string(&path).map_err(|err| Error::user(format!("cannot read {}: {err}", path.display())))?;
            parse_private(&text, &path)?;
            plain.push((name, path, text));
        }
        let names: Vec<String> = plain.iter().map(|(name, _, _)| format!("{}{name}", crate::vault::KEY_PREFIX)).collect();
        self.forget_vault();
        Vault::edit(env, |vault| {
            for (name, _, text) in &plain {
                vault.set(&format!("{}{name}", crate::vault::KEY_PREFIX), text.clone(), env.now())?;
            }
            Ok(())
        })?;
        // Only once the vault holds them all.
        for (_, path, _) in &plain {
            fs::remove_file(path)
                .map_err(|err| Error::user(format!("the key is in the vault, but {} could not be removed: {err}", path.display())))?;
        }
        Ok(names)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_for(&self, agent: &str, key: &PublicKey) -> PathBuf {
        self.dir.join(format!("{agent}-{}", key.key_id()))
    }

    fn ensure_dir(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|err| Error::internal(format!("cannot create key directory {}: {err}", self.dir.display())))
    }

    /// Make a fresh key pair for `agent`; the private half is not written until [`Self::store`].
    pub fn generate() -> Result<SigningKey> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|err| Error::internal(format!("no randomness for a new key: {err}")))?;
        Ok(SigningKey::from_bytes(&seed))
    }

    /// Keep `key` as `agent`'s key (OpenSSH format): in the vault when it is unlocked, else as
    /// a key file (mode 0600); its `.pub` beside either way. Returns where the key went.
    pub fn store(&self, agent: &str, key: &SigningKey) -> Result<StoredKey> {
        self.ensure_dir()?;
        let public = PublicKey::of(key);
        let path = self.path_for(agent, &public);
        let text = openssh_private(agent, key)?;
        let place = match self.unlocked()? {
            Some(env) => {
                let entry = KeyStore::vault_name(agent, &public);
                self.forget_vault();
                Vault::edit(env, |vault| vault.set(&entry, text.to_string(), env.now()))?;
                KeyPlace::Vault { entry, vault: Vault::path_in(env) }
            }
            None => {
                write_private(&path, text.as_bytes())?;
                KeyPlace::File(path.clone())
            }
        };
        let public_file = public_path(&path);
        let stored = StoredKey { place, public_file };
        if let Err(err) = fs::write(&stored.public_file, format!("{} {agent}@clutch.invalid\n", public.to_openssh())) {
            let _ = self.discard(&stored);
            return Err(Error::internal(format!("cannot write {}: {err}", stored.public_file.display())));
        }
        Ok(stored)
    }

    /// Undo [`Self::store`] for a key that was never registered (its event was refused): the
    /// key file or the vault entry, and the `.pub` file. Nothing else of the vault is touched.
    pub fn discard(&self, stored: &StoredKey) -> Result<()> {
        let _ = fs::remove_file(&stored.public_file);
        match &stored.place {
            KeyPlace::File(path) => match fs::remove_file(path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::internal(format!("cannot remove the unused key {}: {err}", path.display())))
                }
                _ => Ok(()),
            },
            KeyPlace::Vault { entry, .. } => {
                let env = self.unlocked()?.ok_or_else(|| Error::internal("the vault was locked while a key was being stored"))?;
                self.forget_vault();
                Vault::edit(env, |vault| {
                    vault.remove(entry);
                    Ok(())
                })
            }
        }
    }

    /// Make `agent`'s entry point at an existing key file, returning that key.
    pub fn link(&self, agent: &str, external: &Path) -> Result<SigningKey> {
        let key = read_private(external)?;
        self.ensure_dir()?;
        let path = self.path_for(agent, &PublicKey::of(&key));
        let target = fs::canonicalize(external).map_err(|err| Error::user(format!("cannot resolve {}: {err}", external.display())))?;
        if fs::canonicalize(&path).is_ok_and(|existing| existing == target) {
            // The entry already is (or points at) this very key: replacing it with a link to
            // itself would destroy the key.
            return Ok(key);
        }
        if fs::symlink_metadata(&path).is_ok() {
            fs::remove_file(&path)?;
        }
        std::os::unix::fs::symlink(&target, &path)
            .map_err(|err| Error::internal(format!("cannot link {} to {}: {err}", path.display(), target.display())))?;
        Ok(key)
    }

    /// The private key for `agent` whose public half is `key`: its key file, else its entry
    /// in the unlocked vault.
    pub fn load(&self, agent: &str, key: &PublicKey) -> Result<SigningKey> {
        let path = self.path_for(agent, key);
        let signing = if path.exists() {
            read_private(&path)?
        } else {
            let name = KeyStore::vault_name(agent, key);
            match self.unlocked()? {
                Some(env) => {
                    let vault = self.vault(env)?;
                    let entry = vault.get(&name).ok_or_else(|| {
                        Error::user(format!(
                            "no private key for agent '{agent}' on this machine (looked for {} and {name} in the vault)",
                            path.display()
                        ))
                        .hint("run the command on the machine that holds the key, or set CLUTCH_HOME to where it is")
                    })?;
                    parse_private(&entry.value, vault.path())?
                }
                None if public_path(&path).exists() => {
                    return Err(Error::user(format!("the private key for agent '{agent}' is in the vault, which is locked"))
                        .hint("set CLUTCH_SECRET_KEY (or CLUTCH_SECRET_KEY_FILE) to the vault's identity or passphrase"))
                }
                None => {
                    return Err(Error::user(format!("no private key for agent '{agent}' on this machine (looked for {})", path.display()))
                        .hint("run the command on the machine that holds the key, or set CLUTCH_HOME to where it is"))
                }
            }
        };
        if PublicKey::of(&signing) != *key {
            return Err(Error::user(format!("the key at {} is not the key the roster holds for '{agent}'", path.display())));
        }
        Ok(signing)
    }
}

/// The `.pub` file beside a key file (appended, so dotted agent ids keep their own).
/// Where [`KeyStore::store`] kept a private key, so a refused registration can undo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub place: KeyPlace,
    /// The `.pub` file written beside it.
    pub public_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPlace {
    /// A key file, mode 0600.
    File(PathBuf),
    /// The entry `entry` of the vault file `vault`.
    Vault { entry: String, vault: PathBuf },
}

impl StoredKey {
    /// The file that holds the private key: the key file, or the vault.
    pub fn location(&self) -> &Path {
        match &self.place {
            KeyPlace::File(path) => path,
            KeyPlace::Vault { vault, .. } => vault,
        }
    }

    pub fn in_vault(&self) -> bool {
        matches!(self.place, KeyPlace::Vault { .. })
    }
}

pub fn public_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// `key` as an OpenSSH private key file's text.
fn openssh_private(agent: &str, key: &SigningKey) -> Result<zeroize::Zeroizing<String>> {
    let keypair = ssh_key::private::Ed25519Keypair::from_seed(&key.to_bytes());
    let private = ssh_key::PrivateKey::new(ssh_key::private::KeypairData::from(keypair), format!("{agent}@clutch.invalid"))
        .map_err(|err| Error::internal(format!("cannot encode key for {agent}: {err}")))?;
    let text =
        private.to_openssh(ssh_key::LineEnding::LF).map_err(|err| Error::internal(format!("cannot encode key for {agent}: {err}")))?;
    Ok(zeroize::Zeroizing::new(text.to_string()))
}

/// Read an unencrypted OpenSSH Ed25519 private key.
pub fn read_private(path: &Path) -> Result<SigningKey> {
    let text = fs::read_to_string(path).map_err(|err| Error::user(format!("cannot read private key {}: {err}", path.display())))?;
    parse_private(&text, path)
}

/// Parse an unencrypted OpenSSH Ed25519 private key; `path` names where it came from.
fn parse_private(text: &str, path: &Path) -> Result<SigningKey> {
    if !names_ed25519(text) {
        return Err(Error::user(format!("{} is not an Ed25519 key", path.display()))
            .hint("clutch signs with Ed25519 only: create one with ssh-keygen -t ed25519"));
    }
    let key = ssh_key::PrivateKey::from_openssh(text.as_bytes()).map_err(|err| {
        Error::user(format!("{} is not an OpenSSH private key: {err}", path.display()))
            .hint("give the private half (id_ed25519), not the .pub file")
    })?;
    if key.is_encrypted() {
        return Err(Error::user(format!("{} is protected by a passphrase", path.display()))
            .hint("clutch signs many events without a prompt: use an unencrypted Ed25519 key for it"));
    }
    match key.key_data() {
        ssh_key::private::KeypairData::Ed25519(pair) => Ok(SigningKey::from_bytes(&pair.private.to_bytes())),
        _ => Err(Error::user(format!("{} is not an Ed25519 key", path.display())).hint("create one with: ssh-keygen -t ed25519")),
    }
}

/// Whether an OpenSSH private key file holds an Ed25519 key (other types and PEM keys do not
/// name `ssh-ed25519` in their decoded body).
fn names_ed25519(text: &str) -> bool {
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().concat();
    match Base64::decode_vec(body.trim()) {
        Ok(blob) => blob.windows(11).any(|w| w == b"ssh-ed25519"),
        // Not base64 at all: let the parser say what it is.
        Err(_) => true,
    }
}

/// Write a secret file: create under a temporary name with mode 0600, sync, rename.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::internal(format!("cannot write key {}: {err}", path.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn openssh_round_trip_and_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::new(dir.path().join("keys"));
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let stored = store.store("alice", &key).expect("store");
        let path = stored.location();
        let mode = fs::metadata(path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let public = PublicKey::of(&key);
        let loaded = store.load("alice", &public).expect("load");
        assert_eq!(loaded.to_bytes(), key.to_bytes());
        assert_eq!(PublicKey::parse_openssh(&public.to_openssh()).expect("parse"), public);
        assert!(store.load("bob", &public).is_err());
    }

    #[test]
    fn bad_public_keys_are_refused() {
        for text in ["", "ssh-rsa AAAAB3NzaC1yc2E", "ssh-ed25519", "ssh-ed25519 !!!", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"] {
            assert!(PublicKey::parse_openssh(text).is_err(), "{text}");
        }
    }
}
