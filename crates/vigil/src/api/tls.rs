//! TLS for the API over TCP (rustls through tonic): the agent's certificate
//! and, with client CAs, the certificates callers must present (mTLS); and
//! the CLI's side of the same. PEM files are read and parsed here first, so
//! that a bad one fails the start with its flag and path named.
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The agent's TLS settings, ready for the server.
pub struct ServerTls {
    pub config: ServerTlsConfig,
    /// The handshake demands a certificate signed by a client CA: whoever
    /// completes it is admitted, from any host and as any user.
    pub verifies_clients: bool,
}

/// The agent's flags: `--server-tls-cert-file` and `--server-tls-key-file`,
/// optionally `--server-tls-client-ca-files`. None without a certificate.
pub fn server_tls(
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
    client_ca_files: &[PathBuf],
) -> Result<Option<ServerTls>> {
    let (cert_file, key_file) = match (cert_file, key_file) {
        (None, None) if client_ca_files.is_empty() => return Ok(None),
        (None, None) => bail!(
            "--server-tls-client-ca-files needs --server-tls-cert-file and --server-tls-key-file"
        ),
        (Some(_), None) => bail!("--server-tls-cert-file needs --server-tls-key-file"),
        (None, Some(_)) => bail!("--server-tls-key-file needs --server-tls-cert-file"),
        (Some(c), Some(k)) => (c, k),
    };
    let identity = Identity::from_pem(
        read_certificates(cert_file, "--server-tls-cert-file")?,
        read_key(key_file, "--server-tls-key-file")?,
    );
    let mut config = ServerTlsConfig::new().identity(identity);
    // tonic takes one PEM bundle: the CAs of every file, concatenated.
    let mut client_cas = Vec::new();
    for file in client_ca_files {
        client_cas.extend(read_certificates(file, "--server-tls-client-ca-files")?);
        client_cas.push(b'\n');
    }
    let verifies_clients = !client_cas.is_empty();
    if verifies_clients {
        config = config.client_ca_root(Certificate::from_pem(client_cas));
    }
    // rustls parses the certificate and the client CAs and checks that the
    // key fits the certificate here, before any caller comes.
    tonic::transport::Server::builder()
        .tls_config(config.clone())
        .with_context(|| {
            format!(
                "TLS with --server-tls-cert-file {}, --server-tls-key-file {}{}",
                cert_file.display(),
                key_file.display(),
                if verifies_clients {
                    " and --server-tls-client-ca-files"
                } else {
                    ""
                }
            )
        })?;
    Ok(Some(ServerTls {
        config,
        verifies_clients,
    }))
}

/// The CLI's flags: `--tls-ca-file` (the CA that signed the agent's
/// certificate) turns TLS on; `--tls-cert-file` and `--tls-key-file` are
/// the client's own certificate for an agent that demands one.
#[derive(Debug, Clone, Default)]
pub struct ClientTlsFiles {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The name the agent's certificate must carry, when it is not the
    /// host of `--server-address`.
    pub server_name: Option<String>,
}

impl ClientTlsFiles {
    /// None: plain text.
    pub fn config(&self) -> Result<Option<ClientTlsConfig>> {
        let Some(ca_file) = &self.ca_file else {
            if self.cert_file.is_some() || self.key_file.is_some() || self.server_name.is_some() {
                bail!("TLS needs --tls-ca-file, the CA that signed the agent's certificate");
            }
            return Ok(None);
        };
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(
            read_certificates(ca_file, "--tls-ca-file")?,
        ));
        match (&self.cert_file, &self.key_file) {
            (None, None) => {}
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(
                    read_certificates(cert, "--tls-cert-file")?,
                    read_key(key, "--tls-key-file")?,
                ));
            }
            (Some(_), None) => bail!("--tls-cert-file needs --tls-key-file"),
            (None, Some(_)) => bail!("--tls-key-file needs --tls-cert-file"),
        }
        if let Some(name) = &self.server_name {
            config = config.domain_name(name);
        }
        Ok(Some(config))
    }
}

/// A PEM file holding at least one certificate.
fn read_certificates(path: &Path, flag: &str) -> Result<Vec<u8>> {
    let pem = std::fs::read(path).with_context(|| format!("{flag}: reading {}", path.display()))?;
    let count = CertificateDer::pem_slice_iter(&pem)
        .try_fold(0, |n, cert| cert.map(|_| n + 1))
        .map_err(|e| anyhow!("{flag}: {} is not valid PEM: {e}", path.display()))?;
    if count == 0 {
        bail!(
            "{flag}: {} holds no certificate (PEM \"-----BEGIN CERTIFICATE-----\")",
            path.display()
        );
    }
    Ok(pem)
}

/// A PEM file holding a private key (PKCS#8, PKCS#1 or SEC1).
fn read_key(path: &Path, flag: &str) -> Result<Vec<u8>> {
    let pem = std::fs::read(path).with_context(|| format!("{flag}: reading {}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        anyhow!(
            "{flag}: {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
            path.display()
        )
    })?;
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_configurations_are_refused() {
        let cert = Path::new("/nonexistent/cert.pem");
        let err = |r: Result<Option<ServerTls>>| r.err().map(|e| e.to_string());
        assert!(server_tls(None, None, &[]).unwrap().is_none());
        assert!(err(server_tls(Some(cert), None, &[]))
            .unwrap()
            .contains("needs --server-tls-key-file"));
        assert!(err(server_tls(None, None, &[cert.into()]))
            .unwrap()
            .contains("--server-tls-client-ca-files needs"));
        let no_ca = ClientTlsFiles {
            cert_file: Some(cert.into()),
            ..Default::default()
        };
        assert!(no_ca.config().is_err());
        assert!(ClientTlsFiles::default().config().unwrap().is_none());
    }

    #[test]
    fn unreadable_and_non_pem_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let missing = dir.path().join("missing.pem");
        let e = server_tls(Some(&missing), Some(&junk), &[]).err().unwrap();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("--server-tls-cert-file") && msg.contains("missing.pem"),
            "{msg}"
        );
        let e = server_tls(Some(&junk), Some(&junk), &[]).err().unwrap();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("junk.pem") && msg.contains("no certificate"),
            "{msg}"
        );
    }
}
