//! TLS settings for both directions, loaded from PEM files.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::error::MllpError;

/// TLS for the listener: a certificate chain and its private key.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

impl ServerTls {
    /// Load a PEM certificate chain file and a PEM private key file.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, MllpError> {
        ServerTls::from_pem(&read(cert)?, &read(key)?)
    }

    /// Use a PEM certificate chain and a PEM private key held in memory.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, MllpError> {
        let certs = parse_certs(cert_pem)?;
        let key = parse_key(key_pem)?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(config_error)?;
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// TLS for the client: the CA certificates to trust and the name to verify.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl ClientTls {
    /// Trust the CA certificates in a PEM file; verify the server as `server_name`.
    pub fn from_ca_file(ca: &Path, server_name: &str) -> Result<Self, MllpError> {
        ClientTls::from_ca_pem(&read(ca)?, server_name)
    }

    /// Trust the CA certificates in PEM held in memory; verify the server as `server_name`.
    pub fn from_ca_pem(ca_pem: &[u8], server_name: &str) -> Result<Self, MllpError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in parse_certs(ca_pem)? {
            roots.add(cert).map_err(config_error)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server_name = ServerName::try_from(server_name.to_owned()).map_err(|_| MllpError::TlsConfig {
            detail: format!("{server_name:?} is not a valid tls server name"),
        })?;
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    pub(crate) fn connector(&self) -> &TlsConnector {
        &self.connector
    }

    pub(crate) fn server_name(&self) -> ServerName<'static> {
        self.server_name.clone()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, MllpError> {
    std::fs::read(path).map_err(|err| MllpError::TlsConfig {
        detail: format!("cannot read {}: {err}", path.display()),
    })
}

fn config_error(err: impl std::fmt::Display) -> MllpError {
    MllpError::TlsConfig {
        detail: err.to_string(),
    }
}

fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, MllpError> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(config_error)?;
    if certs.is_empty() {
        return Err(MllpError::TlsConfig {
            detail: "no certificate found in the pem data".into(),
        });
    }
    Ok(certs)
}

fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, MllpError> {
    rustls_pemfile::private_key(&mut &pem[..])
        .map_err(config_error)?
        .ok_or_else(|| MllpError::TlsConfig {
            detail: "no private key found in the pem data".into(),
        })
}
