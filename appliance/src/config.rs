//! The appliance configuration file (`/etc/frontdesk/frontdesk.toml`), with CLI overrides.
//!
//! Secrets never live here: the database key is in a root-only key file or a systemd credential,
//! and the PBX password is read from a file named here (`password_file`), not written inline.
//! Unknown keys are errors, so a typo is reported with its name and line instead of being ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub sip: SipConfig,
    pub http: HttpConfig,
    pub engines: EnginesConfig,
    pub models: ModelsConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// Address the SIP endpoint listens on (UDP and TCP).
    pub listen: SocketAddr,
    /// Host or IP put in Contact/SDP; defaults to the listen address.
    pub public_host: Option<String>,
    /// First and last UDP port for RTP, inclusive.
    pub rtp_ports: (u16, u16),
    /// The user part callers dial (sip:USER@box).
    pub user: String,
    /// Only these source addresses or networks may send requests (the PBX), e.g. "192.0.2.10" or
    /// "192.0.2.0/28". Empty: accept all (lab use only).
    pub trusted_sources: Vec<String>,
    /// Answer INVITEs for any user part (a trunk that sends the dialled number), not only `user`.
    pub accept_any_user: bool,
    /// Concurrent calls before new INVITEs get 503 with Retry-After.
    pub max_calls: usize,
    /// Refer-To for transfers; `{target}` is replaced by the practice's configured URI.
    pub refer_uri_template: String,
    /// SIP over TLS listen address (5061 by convention); unset: TLS off.
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain for TLS (required with `tls_listen`).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of that certificate (root/service-user readable only).
    pub tls_key_file: Option<PathBuf>,
    pub register: Option<RegisterConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegisterConfig {
    /// Registrar URI of the office PBX, e.g. `sip:pbx.example.lan`; `sips:pbx.example.lan` or
    /// `;transport=tls` registers over TLS (`;transport=tcp` over TCP).
    pub registrar: String,
    /// Address-of-record user (the extension), e.g. `250`.
    pub user: String,
    /// Digest authentication user, if it differs from `user`.
    pub auth_user: Option<String>,
    /// File holding the digest password (root-only). Never the password itself.
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_expires")]
    pub expires_secs: u32,
    /// PEM CA certificate(s) the PBX's TLS certificate must chain to (or its self-signed
    /// certificate). Default: the system store, /etc/ssl/certs/ca-certificates.crt.
    pub tls_ca_file: Option<PathBuf>,
}

fn default_expires() -> u32 {
    600
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EnginesConfig {
    /// Where the engine binaries (frontdesk-asr, -llm, -tts, -vad) are; default: next to `frontdesk`.
    pub bin_dir: Option<PathBuf>,
    /// Threads per engine; default min(cores, 4).
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Directory of trusted vendor public keys (`*.pub`) for model bundles.
    pub trusted_keys_dir: PathBuf,
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:5060".parse().expect("literal"),
            public_host: None,
            rtp_ports: (16384, 16483),
            user: "frontdesk".into(),
            trusted_sources: Vec::new(),
            accept_any_user: false,
            max_calls: 4,
            refer_uri_template: "{target}".into(),
            tls_listen: None,
            tls_cert_file: None,
            tls_key_file: None,
            register: None,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { listen: "0.0.0.0:8080".parse().expect("literal") }
    }
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self { trusted_keys_dir: "/etc/frontdesk/trusted-keys".into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, #[source] source: std::io::Error },
    /// toml's message names the key and shows the line, e.g. "unknown field `listn`".
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: {field}: {problem}")]
    Invalid { path: PathBuf, field: &'static str, problem: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        // toml's Display quotes the offending source line, which could be a secret typed in the
        // wrong place; report the line number and the message only.
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let message = match e.span() {
                Some(span) => {
                    let start = span.start.min(text.len());
                    let line_no = text.as_bytes()[..start].iter().filter(|&&b| b == b'\n').count() + 1;
                    // Name the key (the text before `=` on that line), never its value.
                    let line = text.lines().nth(line_no - 1).unwrap_or("");
                    let key = line.split_once('=').map(|(k, _)| k.trim()).filter(|k| {
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-.\"".contains(c))
                    });
                    match key {
                        Some(k) => format!("line {line_no}, `{k}`: {}", e.message()),
                        None => format!("line {line_no}: {}", e.message()),
                    }
                }
                None => e.message().to_string(),
            };
            ConfigError::Parse { path: path.to_owned(), message }
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field, problem: &str| ConfigError::Invalid { path: path.to_owned(), field, problem: problem.into() };
        let (lo, hi) = self.sip.rtp_ports;
        if lo == 0 || lo > hi || lo % 2 == 1 {
            return Err(invalid("sip.rtp_ports", "must be [first, last] with an even, non-zero first port and first <= last"));
        }
        if self.sip.max_calls == 0 {
            return Err(invalid("sip.max_calls", "must be at least 1"));
        }
        if !self.sip.refer_uri_template.contains("{target}") {
            return Err(invalid("sip.refer_uri_template", "must contain {target}"));
        }
        if self.sip.user.is_empty() || !self.sip.user.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c)) {
            return Err(invalid("sip.user", "must be a non-empty SIP user part (letters, digits, - _ . +)"));
        }
        if let Some(r) = &self.sip.register {
            let uri = r.registrar.parse::<fd_voice::sip::ua::RegistrarUri>().map_err(|e| invalid("sip.register.registrar", &e))?;
            // Outgoing TLS needs the CA at start-up; check it here so the error names the field.
            if uri.transport == fd_voice::sip::ua::Transport::Tls || r.tls_ca_file.is_some() {
                let ca = r.tls_ca_file.clone().unwrap_or_else(|| PathBuf::from(fd_voice::endpoint::SYSTEM_CA_FILE));
                fd_voice::endpoint::load_tls_ca(&ca).map_err(|e| invalid("sip.register.tls_ca_file", &e.to_string()))?;
            }
            if r.expires_secs < 60 {
                return Err(invalid("sip.register.expires_secs", "must be at least 60"));
            }
        }
        for t in &self.sip.trusted_sources {
            if t.parse::<fd_voice::sip::ua::IpNet>().is_err() {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    field: "sip.trusted_sources",
                    problem: format!("'{t}' is not an IP address or network (e.g. 192.0.2.10 or 192.0.2.0/28)"),
                });
            }
        }
        self.validate_tls(path)?;
        if self.engines.threads == Some(0) {
            return Err(invalid("engines.threads", "must be at least 1"));
        }
        Ok(())
    }

    /// TLS needs both PEM files, readable, parseable and matching; each problem names its field.
    fn validate_tls(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field, problem: String| ConfigError::Invalid { path: path.to_owned(), field, problem };
        let (cert, key) = (&self.sip.tls_cert_file, &self.sip.tls_key_file);
        if self.sip.tls_listen.is_none() {
            if cert.is_some() || key.is_some() {
                return Err(invalid("sip.tls_listen", "is not set, so the TLS certificate and key are unused: set tls_listen (e.g. \"0.0.0.0:5061\") or remove them".into()));
            }
            return Ok(());
        }
        let Some(cert) = cert else {
            return Err(invalid("sip.tls_cert_file", "is required with sip.tls_listen: the PEM certificate chain the PBX will see".into()));
        };
        let Some(key) = key else {
            return Err(invalid("sip.tls_key_file", "is required with sip.tls_listen: the PEM private key of sip.tls_cert_file".into()));
        };
        let certs = fd_voice::endpoint::load_tls_certs(cert).map_err(|e| invalid("sip.tls_cert_file", e.to_string()))?;
        let key = fd_voice::endpoint::load_tls_key(key).map_err(|e| invalid("sip.tls_key_file", e.to_string()))?;
        fd_voice::endpoint::tls_server_config(certs, key).map_err(|e| invalid("sip.tls_key_file", e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("frontdesk.toml"))
    }

    #[test]
    fn empty_file_is_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn full_file_parses() {
        let c = parse(
            r#"
            [sip]
            listen = "127.0.0.1:5080"
            rtp_ports = [20000, 20100]
            trusted_sources = ["192.0.2.10", "198.51.100.0/24"]
            [sip.register]
            registrar = "sip:pbx.lan"
            user = "250"
            password_file = "/etc/frontdesk/pbx-password"
            [http]
            listen = "127.0.0.1:9000"
            "#,
        )
        .unwrap();
        assert_eq!(c.sip.listen.port(), 5080);
        assert_eq!(c.sip.register.unwrap().expires_secs, 600);
        assert_eq!(c.http.listen.port(), 9000);
    }

    #[test]
    fn unknown_key_names_the_field() {
        let e = parse("[sip]\nlisten_addr = \"1.2.3.4:5\"\n").unwrap_err().to_string();
        assert!(e.contains("listen_addr"), "{e}");
    }

    #[test]
    fn bad_value_names_the_field() {
        let e = parse("[sip]\nlisten = \"not an address\"\n").unwrap_err().to_string();
        assert!(e.contains("listen"), "{e}");
        let e = parse("[sip]\ntrusted_sources = [\"pbx.lan\"]\n").unwrap_err().to_string();
        assert!(e.contains("sip.trusted_sources"), "{e}");
        let e = parse("[sip]\nrtp_ports = [5001, 5000]\n").unwrap_err().to_string();
        assert!(e.contains("sip.rtp_ports"), "{e}");
        let e = parse("[sip.register]\nregistrar = \"pbx.lan\"\nuser = \"1\"\n").unwrap_err().to_string();
        assert!(e.contains("sip.register.registrar"), "{e}");
        let e = parse("[sip.register]\nregistrar = \"sip:pbx.lan;transport=sctp\"\nuser = \"1\"\n").unwrap_err().to_string();
        assert!(e.contains("sip.register.registrar") && e.contains("sctp"), "{e}");
    }

    #[test]
    fn tls_registrar_ca_file_is_checked_and_named() {
        let dir = std::env::temp_dir().join(format!("fd-config-tlsca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("pbx-ca.pem");
        let reg = |uri: &str| format!("[sip.register]\nregistrar = \"{uri}\"\nuser = \"1\"\ntls_ca_file = \"{}\"\n", ca.display());
        let e = parse(&reg("sips:pbx.lan")).unwrap_err().to_string();
        assert!(e.contains("sip.register.tls_ca_file") && e.contains("cannot read"), "{e}");
        std::fs::write(&ca, "not a certificate").unwrap();
        let e = parse(&reg("sip:pbx.lan;transport=tls")).unwrap_err().to_string();
        assert!(e.contains("sip.register.tls_ca_file") && e.contains("pbx-ca.pem"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn shipped_example_is_valid_and_matches_defaults() {
        let example = include_str!("../../packaging/frontdesk.toml.example");
        assert_eq!(parse(example).unwrap(), Config::default());
    }

    #[test]
    fn tls_fields_are_checked_and_named() {
        let e = parse("[sip]\ntls_listen = \"127.0.0.1:5061\"\n").unwrap_err().to_string();
        assert!(e.contains("sip.tls_cert_file") && e.contains("required"), "{e}");
        let e = parse("[sip]\ntls_cert_file = \"/x.pem\"\n").unwrap_err().to_string();
        assert!(e.contains("sip.tls_listen"), "{e}");
        let dir = std::env::temp_dir().join(format!("fd-config-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let tls = |c: &Path, k: &Path| {
            format!("[sip]\ntls_listen = \"127.0.0.1:5061\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n", c.display(), k.display())
        };
        // Missing cert file: the field and "cannot read".
        let e = parse(&tls(&cert, &key)).unwrap_err().to_string();
        assert!(e.contains("sip.tls_cert_file") && e.contains("cannot read"), "{e}");
        // Not PEM.
        std::fs::write(&cert, "hello").unwrap();
        let e = parse(&tls(&cert, &key)).unwrap_err().to_string();
        assert!(e.contains("sip.tls_cert_file") && e.contains("no PEM certificate"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn password_is_not_accepted_inline() {
        let e = parse("[sip.register]\nregistrar = \"sip:pbx\"\nuser = \"1\"\npassword = \"hunter2\"\n").unwrap_err().to_string();
        assert!(e.contains("password"), "{e}");
        assert!(!e.contains("hunter2"), "a secret must not be echoed back: {e}");
    }
}
