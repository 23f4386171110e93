//! Certificates for TLS tests, made fresh for each test with `rcgen`: a CA, a server
//! certificate for `localhost` and `127.0.0.1` signed by it, a client certificate signed by
//! it (for mutual TLS), and a second, unrelated CA (the "wrong CA" a test expects to fail).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// PEM files in a temporary directory, removed on drop.
pub struct TestCerts {
    dir: tempfile::TempDir,
}

impl TestCerts {
    /// Generates every file.
    pub fn generate() -> TestCerts {
        let dir = tempfile::Builder::new()
            .prefix("herald-tls-")
            .tempdir()
            .expect("create a temp dir");
        let ca = new_ca("Herald test CA");
        let server = leaf(&["localhost", "127.0.0.1"], &ca);
        let client = leaf(&["herald-client"], &ca);
        let other = new_ca("Some other CA");
        let write = |name: &str, pem: String| {
            std::fs::write(dir.path().join(name), pem).expect("write a PEM file");
        };
        write("ca.pem", ca.pem());
        write("server.pem", server.0);
        write("server.key", server.1);
        write("client.pem", client.0);
        write("client.key", client.1);
        write("other-ca.pem", other.pem());
        TestCerts { dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// The CA that signed the server's and the client's certificates.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }
    /// A CA that signed nothing here: the server's certificate does not verify against it.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a CA key"))
        .expect("a self-signed CA")
}

/// A certificate for `names` signed by `ca`: (certificate PEM, key PEM).
fn leaf(names: &[&str], ca: &CertifiedIssuer<'static, KeyPair>) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("leaf params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0].clone());
    let key = KeyPair::generate().expect("a leaf key");
    let cert = params.signed_by(&key, ca).expect("a signed certificate");
    (cert.pem(), key.serialize_pem())
}
