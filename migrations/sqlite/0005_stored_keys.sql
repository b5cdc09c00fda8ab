-- Issue #6: a server's private key may be stored in the database instead of referenced by
-- path: encrypted with ChaCha20-Poly1305 under the master key (never stored here), as
-- 12-byte nonce || ciphertext. key_path is '' for such servers.
alter table servers add column key_sealed blob;
-- SHA256 fingerprint of the stored key's public half, to show instead of the key.
alter table servers add column key_fingerprint text;
