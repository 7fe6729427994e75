//! The service's settings: defaults, then a TOML file, then `PHISCRUB_*` environment
//! variables, then the command line (which the front-end applies last), into one struct.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Everything `phiscrub serve` can be told. Each field's default is documented; the TOML key
/// and the environment variable (`PHISCRUB_` + the key in capitals) share the field's name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Addresses to listen on. Default `127.0.0.1:8080`.
    pub listen: Vec<SocketAddr>,
    /// Images scrubbed at once: the thread budget, as the CLI's `--jobs`. Default: the
    /// number of cores.
    pub jobs: usize,
    /// Requests that may wait for a free worker beyond `jobs`; one more gets `503` with
    /// `Retry-After` at once. Default `2 * jobs`.
    pub queue: Option<usize>,
    /// Largest request body in bytes; a larger one gets `413` before it is read. Default
    /// 64 MiB (a 200 MP phone JPEG is about 60 MiB).
    pub max_body_bytes: u64,
    /// Longest a request may take, waiting included, in seconds; past it the answer is
    /// `503`. Default 60.
    pub request_timeout_secs: f64,
    /// How long in-flight requests may take to finish after SIGTERM or Ctrl-C, in seconds.
    /// Default 30.
    pub shutdown_grace_secs: f64,
    /// Serve without bearer tokens. Accepted only when every listen address is loopback.
    /// Default `false`.
    pub no_auth: bool,
    /// A file holding one accepted token per line (blank lines and `#` comments skipped).
    /// Tokens also come from `PHISCRUB_TOKEN`. Default none.
    pub token_file: Option<PathBuf>,
    /// A PEM certificate chain to serve HTTPS with (rustls), with `tls_key`. Default none:
    /// plain HTTP, for loopback or behind a reverse proxy that terminates TLS.
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// The ONNX Runtime library. Default: found as the CLI finds it.
    pub ort_lib: Option<PathBuf>,
    /// A folder of models with their MANIFEST. Default: the models built in.
    pub models: Option<PathBuf>,
    /// Accepted tokens, from the environment or the token file; never read from TOML.
    #[serde(skip)]
    pub tokens: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            queue: None,
            max_body_bytes: 64 << 20,
            request_timeout_secs: 60.0,
            shutdown_grace_secs: 30.0,
            no_auth: false,
            token_file: None,
            tls_cert: None,
            tls_key: None,
            ort_lib: None,
            models: None,
            tokens: Vec::new(),
        }
    }
}

/// Why the settings cannot be used. The service does not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML file could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// An environment variable holds a value of the wrong kind.
    #[error("{name}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// The settings contradict each other or leave the service open.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, overlaid by `file` when given, then by `env` (`PHISCRUB_*` pairs, as
    /// `std::env::vars()` gives them).
    pub fn layered(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut c = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::File {
                    path: p.to_path_buf(),
                    reason: e.to_string(),
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::File {
                    path: p.to_path_buf(),
                    reason: e.message().to_string(),
                })?
            }
            None => Config::default(),
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix("PHISCRUB_") else {
                continue;
            };
            let bad = |reason: String| ConfigError::Env {
                name: name.clone(),
                reason,
            };
            let num = |v: &str| {
                v.parse::<f64>()
                    .map_err(|_| bad(format!("'{v}' is not a number")))
            };
            let int = |v: &str| {
                v.parse::<usize>()
                    .map_err(|_| bad(format!("'{v}' is not a whole number")))
            };
            match key {
                "LISTEN" => {
                    c.listen = value
                        .split(',')
                        .map(|a| a.trim().parse())
                        .collect::<Result<_, _>>()
                        .map_err(|_| bad(format!("'{value}' is not ADDR:PORT[,ADDR:PORT]")))?
                }
                "JOBS" => c.jobs = int(&value)?,
                "QUEUE" => c.queue = Some(int(&value)?),
                "MAX_BODY_BYTES" => c.max_body_bytes = int(&value)? as u64,
                "REQUEST_TIMEOUT_SECS" => c.request_timeout_secs = num(&value)?,
                "SHUTDOWN_GRACE_SECS" => c.shutdown_grace_secs = num(&value)?,
                "NO_AUTH" => c.no_auth = matches!(value.as_str(), "1" | "true" | "yes" | "on"),
                "TOKEN_FILE" => c.token_file = Some(value.into()),
                "TLS_CERT" => c.tls_cert = Some(value.into()),
                "TLS_KEY" => c.tls_key = Some(value.into()),
                "TOKEN" => c.tokens.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(String::from),
                ),
                // The CLI's own variables (PHISCRUB_HOME) and any others are not ours.
                _ => {}
            }
        }
        Ok(c)
    }

    /// Reads the token file into `tokens` and checks that the settings hold together: at
    /// least one token unless `no_auth`, and `no_auth` only on loopback.
    pub fn finish(mut self) -> Result<Config, ConfigError> {
        if let Some(p) = &self.token_file {
            let text = std::fs::read_to_string(p).map_err(|e| ConfigError::File {
                path: p.clone(),
                reason: e.to_string(),
            })?;
            self.tokens.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            );
        }
        if self.listen.is_empty() {
            return Err(ConfigError::Invalid("no address to listen on".into()));
        }
        if self.jobs == 0 {
            return Err(ConfigError::Invalid("jobs must be at least 1".into()));
        }
        if !(self.request_timeout_secs > 0.0 && self.shutdown_grace_secs >= 0.0) {
            return Err(ConfigError::Invalid(
                "timeouts must be positive numbers of seconds".into(),
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "TLS needs both a certificate and its key".into(),
            ));
        }
        if self.no_auth {
            if let Some(a) = self.listen.iter().find(|a| !a.ip().is_loopback()) {
                return Err(ConfigError::Invalid(format!(
                    "serving without tokens is allowed on loopback only, not on {a}"
                )));
            }
        } else if self.tokens.is_empty() {
            return Err(ConfigError::Invalid(
                "no bearer token: set PHISCRUB_TOKEN or a token file (or serve on loopback \
                 without tokens)"
                    .into(),
            ));
        }
        if self.tokens.iter().any(|t| t.len() < 16) {
            return Err(ConfigError::Invalid(
                "a token is shorter than 16 characters".into(),
            ));
        }
        Ok(self)
    }

    /// Waiting requests allowed beyond `jobs`.
    pub fn queue(&self) -> usize {
        self.queue.unwrap_or(2 * self.jobs)
    }

    /// The per-request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.request_timeout_secs)
    }

    /// The bound on finishing in-flight requests at shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_grace_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_the_file_and_the_file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("phiscrub-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("serve.toml");
        std::fs::write(&file, "jobs = 3\nmax_body_bytes = 1000\n").unwrap();
        let c =
            Config::layered(Some(&file), env(&[("PHISCRUB_JOBS", "5"), ("HOME", "/x")])).unwrap();
        assert_eq!((c.jobs, c.max_body_bytes), (5, 1000));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error() {
        let dir = std::env::temp_dir().join(format!("phiscrub-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("serve.toml");
        std::fs::write(&file, "jbos = 3\n").unwrap();
        let e = Config::layered(Some(&file), env(&[])).unwrap_err();
        assert!(e.to_string().contains("jbos"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn no_auth_is_refused_off_loopback() {
        let c = Config::layered(None, env(&[("PHISCRUB_LISTEN", "0.0.0.0:8080")])).unwrap();
        let e = Config { no_auth: true, ..c }.finish().unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
    }

    #[test]
    fn tokens_are_required_by_default() {
        let e = Config::default().finish().unwrap_err();
        assert!(e.to_string().contains("PHISCRUB_TOKEN"), "{e}");
        let c = Config::layered(None, env(&[("PHISCRUB_TOKEN", "0123456789abcdef0123")]))
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(c.tokens.len(), 1);
    }
}
