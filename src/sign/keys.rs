//! Ed25519 keys: the public half as the log records it (`ssh-ed25519 AAAA…`), the private half
//! as an OpenSSH key file on this machine only.
//!
//! Private keys live under `$CLUTCH_HOME/keys/<agent>-<key-id>` (mode 0600, directory 0700).
//! The file name carries the key's id so two orgs with an agent of the same name never
//! overwrite each other's keys. A person's existing key (`--key ~/.ssh/id_ed25519`) is not
//! copied: the entry is a symlink to it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::sshsig::public_key_blob;
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
}

impl KeyStore {
    pub fn new(dir: PathBuf) -> Self {
        KeyStore { dir }
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

    /// Write `key` as `agent`'s key file (OpenSSH format, mode 0600) and its `.pub` beside it.
    pub fn store(&self, agent: &str, key: &SigningKey) -> Result<PathBuf> {
        self.ensure_dir()?;
        let public = PublicKey::of(key);
        let path = self.path_for(agent, &public);
        let keypair = ssh_key::private::Ed25519Keypair::from_seed(&key.to_bytes());
        let private = ssh_key::PrivateKey::new(ssh_key::private::KeypairData::from(keypair), format!("{agent}@clutch.invalid"))
            .map_err(|err| Error::internal(format!("cannot encode key for {agent}: {err}")))?;
        let text =
            private.to_openssh(ssh_key::LineEnding::LF).map_err(|err| Error::internal(format!("cannot encode key for {agent}: {err}")))?;
        write_private(&path, text.as_bytes())?;
        let pub_path = public_path(&path);
        fs::write(&pub_path, format!("{} {agent}@clutch.invalid\n", public.to_openssh()))
            .map_err(|err| Error::internal(format!("cannot write {}: {err}", pub_path.display())))?;
        Ok(path)
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

    /// The private key for `agent` whose public half is `key`.
    pub fn load(&self, agent: &str, key: &PublicKey) -> Result<SigningKey> {
        let path = self.path_for(agent, key);
        if !path.exists() {
            return Err(Error::user(format!("no private key for agent '{agent}' on this machine (looked for {})", path.display()))
                .hint("run the command on the machine that holds the key, or set CLUTCH_HOME to where it is"));
        }
        let signing = read_private(&path)?;
        if PublicKey::of(&signing) != *key {
            return Err(Error::user(format!("the key at {} is not the key the roster holds for '{agent}'", path.display())));
        }
        Ok(signing)
    }
}

/// The `.pub` file beside a key file (appended, so dotted agent ids keep their own).
pub fn public_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Read an unencrypted OpenSSH Ed25519 private key.
pub fn read_private(path: &Path) -> Result<SigningKey> {
    let text = fs::read_to_string(path).map_err(|err| Error::user(format!("cannot read private key {}: {err}", path.display())))?;
    if !names_ed25519(&text) {
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
        let path = store.store("alice", &key).expect("store");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
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
