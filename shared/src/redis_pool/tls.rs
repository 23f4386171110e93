//! TLS for `rediss://`: the CA, the client certificate and key (`REDIS_CA_CERT`,
//! `REDIS_CLIENT_CERT`, `REDIS_CLIENT_KEY`), read and checked once.

use std::path::PathBuf;

use deadpool_redis::redis::{ClientTlsConfig, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::errors::without_os_error;
use crate::error::ConfigError;

/// The variable naming the private CA, in messages.
pub const CA_CERT_VAR: &str = "REDIS_CA_CERT (--redis-ca-cert)";
/// The variable naming the client certificate, in messages.
pub const CLIENT_CERT_VAR: &str = "REDIS_CLIENT_CERT (--redis-client-cert)";
/// The variable naming the client key, in messages.
pub const CLIENT_KEY_VAR: &str = "REDIS_CLIENT_KEY (--redis-client-key)";

/// PEM files for `rediss://` connections; all optional. Without a CA the system's roots
/// verify the server; the client certificate and key come together or not at all.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    /// The CA (or CAs) that signed the server's certificate (`REDIS_CA_CERT`).
    pub ca_cert: Option<PathBuf>,
    /// The client certificate chain for mutual TLS (`REDIS_CLIENT_CERT`).
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (`REDIS_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    pub(super) fn is_empty(&self) -> bool {
        self.ca_cert.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }

    /// The variable to name first when files are given but TLS is not used.
    pub(super) fn first_var(&self) -> &'static str {
        if self.ca_cert.is_some() {
            CA_CERT_VAR
        } else if self.client_cert.is_some() {
            CLIENT_CERT_VAR
        } else {
            CLIENT_KEY_VAR
        }
    }

    /// Reads and checks the files; `None` when none is given. Each problem names its
    /// variable: unreadable, not PEM, no certificate in it, a certificate without its key.
    pub fn load(&self) -> Result<Option<TlsCertificates>, ConfigError> {
        if self.is_empty() {
            return Ok(None);
        }
        let root_cert = match &self.ca_cert {
            Some(path) => {
                let pem = read_pem(CA_CERT_VAR, path)?;
                check_certificates(CA_CERT_VAR, path, &pem)?;
                Some(pem)
            }
            None => None,
        };
        let client_tls = match (&self.client_cert, &self.client_key) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    CLIENT_KEY_VAR,
                    "is required with REDIS_CLIENT_CERT: give the client certificate's private key (PEM)",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    CLIENT_CERT_VAR,
                    "is required with REDIS_CLIENT_KEY: give the client certificate (PEM)",
                ));
            }
            (Some(cert_path), Some(key_path)) => {
                let client_cert = read_pem(CLIENT_CERT_VAR, cert_path)?;
                check_certificates(CLIENT_CERT_VAR, cert_path, &client_cert)?;
                let client_key = read_pem(CLIENT_KEY_VAR, key_path)?;
                PrivateKeyDer::from_pem_slice(&client_key).map_err(|err| {
                    ConfigError::new(
                        CLIENT_KEY_VAR,
                        format!(
                            "{} holds no usable private key ({err}); expected a PEM file (BEGIN PRIVATE KEY)",
                            key_path.display()
                        ),
                    )
                })?;
                Some(ClientTlsConfig {
                    client_cert,
                    client_key,
                })
            }
        };
        Ok(Some(TlsCertificates {
            client_tls,
            root_cert,
        }))
    }
}

fn read_pem(var: &str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|err| {
        ConfigError::new(
            var,
            format!(
                "cannot read {}: {}",
                path.display(),
                without_os_error(&err.to_string())
            ),
        )
    })
}

fn check_certificates(var: &str, path: &std::path::Path, pem: &[u8]) -> Result<(), ConfigError> {
    let certs: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|err| {
            ConfigError::new(
                var,
                format!("{} is not a PEM certificate file ({err})", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(ConfigError::new(
            var,
            format!(
                "{} holds no certificate; expected a PEM file (BEGIN CERTIFICATE)",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// rustls needs one process-wide crypto provider; Herald uses aws-lc-rs (as reqwest does).
/// Installing it explicitly keeps `rediss://` working whatever else the build enables.
pub(super) fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
