//! SSHSIG (OpenSSH's PROTOCOL.sshsig) for Ed25519, namespace `git`, hash `sha512`.
//!
//! Written out rather than taken from a crate so that the bytes are exactly what
//! `ssh-keygen -Y sign` makes (a test compares a whole commit id with `git commit-tree -S`),
//! and so that replay decodes each signing key once for many events.

use base64ct::{Base64, Encoding};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256, Sha512};

use super::PublicKey;

pub const NAMESPACE: &str = "git";
const MAGIC: &[u8] = b"SSHSIG";
const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const END: &str = "-----END SSH SIGNATURE-----";
const LINE: usize = 70;

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The blob that the Ed25519 key actually signs.
fn message(hash_alg: &str, payload: &[u8]) -> Vec<u8> {
    let digest: Vec<u8> = match hash_alg {
        "sha256" => Sha256::digest(payload).to_vec(),
        _ => Sha512::digest(payload).to_vec(),
    };
    let mut out = Vec::with_capacity(6 + 4 * 4 + NAMESPACE.len() + hash_alg.len() + digest.len());
    out.extend_from_slice(MAGIC);
    put(&mut out, NAMESPACE.as_bytes());
    put(&mut out, b"");
    put(&mut out, hash_alg.as_bytes());
    put(&mut out, &digest);
    out
}

/// The SSH wire encoding of an Ed25519 public key (`string "ssh-ed25519" ‖ string key`).
pub fn public_key_blob(key: &VerifyingKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(51);
    put(&mut out, b"ssh-ed25519");
    put(&mut out, key.as_bytes());
    out
}

/// Sign `payload`; returns the armored signature, ending in a newline, as ssh-keygen writes it.
pub fn sign(key: &SigningKey, payload: &[u8]) -> String {
    let signature = key.sign(&message("sha512", payload));
    let mut sig_blob = Vec::with_capacity(83);
    put(&mut sig_blob, b"ssh-ed25519");
    put(&mut sig_blob, &signature.to_bytes());

    let mut blob = Vec::with_capacity(256);
    blob.extend_from_slice(MAGIC);
    blob.extend_from_slice(&1u32.to_be_bytes());
    put(&mut blob, &public_key_blob(&key.verifying_key()));
    put(&mut blob, NAMESPACE.as_bytes());
    put(&mut blob, b"");
    put(&mut blob, b"sha512");
    put(&mut blob, &sig_blob);

    armor(&blob)
}

/// `-----BEGIN SSH SIGNATURE-----`, the base64 of `blob` in 70-column lines, the END line.
fn armor(blob: &[u8]) -> String {
    let encoded = Base64::encode_string(blob);
    let mut armored = String::with_capacity(encoded.len() + 80);
    armored.push_str(BEGIN);
    armored.push('\n');
    for chunk in encoded.as_bytes().chunks(LINE) {
        armored.push_str(std::str::from_utf8(chunk).expect("base64 is ascii"));
        armored.push('\n');
    }
    armored.push_str(END);
    armored.push('\n');
    armored
}

/// A parsed signature, not yet checked: who claims to have signed, and the signature.
#[derive(Debug, Clone)]
pub struct Signed {
    pub key: PublicKey,
    signature: Signature,
    hash_alg: &'static str,
}

impl Signed {
    /// Parse an armored SSHSIG. Only Ed25519 in namespace `git` is accepted.
    pub fn parse(armored: &str) -> Result<Signed, String> {
        Signed::parse_with(armored, &mut KeyCache::default())
    }

    /// [`Signed::parse`], reusing keys already decoded: an org signs with a handful of keys,
    /// and decoding a key (a curve point decompression) costs more than the rest of the parse.
    pub fn parse_with(armored: &str, keys: &mut KeyCache) -> Result<Signed, String> {
        let body = armored
            .trim()
            .strip_prefix(BEGIN)
            .and_then(|rest| rest.strip_suffix(END))
            .ok_or("not an SSH signature (no BEGIN/END SSH SIGNATURE armor)")?;
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let blob = Base64::decode_vec(&compact).map_err(|_| "SSH signature is not valid base64")?;
        // One signature, one spelling: the armor must be exactly what ssh-keygen writes (70-column
        // lines), or the same signed event could be re-wrapped into a commit with another id.
        if armored.trim_end_matches('\n') != armor(&blob).trim_end_matches('\n') {
            return Err("SSH signature armor is not in ssh-keygen's canonical form".into());
        }
        let mut r = Reader(&blob);
        if r.take(6)? != MAGIC {
            return Err("SSH signature has no SSHSIG magic".into());
        }
        if r.u32()? != 1 {
            return Err("SSH signature has an unknown version".into());
        }
        let mut pk = Reader(r.string()?);
        if pk.string()? != b"ssh-ed25519" {
            return Err("signature key is not Ed25519".into());
        }
        let key_bytes: [u8; 32] = pk.string()?.try_into().map_err(|_| "Ed25519 key is not 32 bytes")?;
        let namespace = r.string()?;
        if namespace != NAMESPACE.as_bytes() {
            return Err(format!("signature namespace is '{}', not 'git'", String::from_utf8_lossy(namespace)));
        }
        let _reserved = r.string()?;
        let hash_alg = match r.string()? {
            b"sha512" => "sha512",
            b"sha256" => "sha256",
            other => return Err(format!("unknown signature hash '{}'", String::from_utf8_lossy(other))),
        };
        let mut sig = Reader(r.string()?);
        if sig.string()? != b"ssh-ed25519" {
            return Err("signature is not Ed25519".into());
        }
        let sig_bytes: [u8; 64] = sig.string()?.try_into().map_err(|_| "Ed25519 signature is not 64 bytes")?;
        let key = match keys.0.get(&key_bytes) {
            Some(key) => *key,
            None => {
                let key = PublicKey::from_bytes(&key_bytes).map_err(|_| "signature carries an invalid Ed25519 key")?;
                if key.verifying_key().is_weak() {
                    return Err("signature carries a weak (small-order) Ed25519 key".into());
                }
                keys.0.insert(key_bytes, key);
                key
            }
        };
        Ok(Signed { key, signature: Signature::from_bytes(&sig_bytes), hash_alg })
    }

    /// Check the signature over `payload` with the key it names.
    pub fn verify(&self, payload: &[u8]) -> Result<(), String> {
        self.key
            .verifying_key()
            .verify_strict(&message(self.hash_alg, payload), &self.signature)
            .map_err(|_| "signature does not match the commit".to_string())
    }
}

/// Decoded public keys by their bytes (valid, non-weak keys only).
#[derive(Debug, Default)]
pub struct KeyCache(std::collections::HashMap<[u8; 32], PublicKey>);

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("SSH signature is truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let bytes: [u8; 4] = self.take(4)?.try_into().expect("took four bytes");
        Ok(u32::from_be_bytes(bytes))
    }
    fn string(&mut self) -> Result<&'a [u8], String> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_and_tamper() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let armored = sign(&key, b"tree 123\n");
        assert!(armored.starts_with(BEGIN) && armored.ends_with("-----END SSH SIGNATURE-----\n"));
        assert!(armored.lines().all(|l| l.len() <= LINE));
        let signed = Signed::parse(&armored).expect("parses");
        assert_eq!(signed.key.verifying_key().as_bytes(), key.verifying_key().as_bytes());
        signed.verify(b"tree 123\n").expect("verifies");
        assert!(signed.verify(b"tree 124\n").is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in ["", "-----BEGIN SSH SIGNATURE-----\n!!\n-----END SSH SIGNATURE-----", "hello"] {
            assert!(Signed::parse(text).is_err());
        }
        let truncated = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ==\n-----END SSH SIGNATURE-----\n";
        assert!(Signed::parse(truncated).is_err());
    }
}
