//! The API token: a newtype whose `Debug` and `Display` print `***`, read from `DOTO_API_TOKEN` or a
//! token file and never from a flag, so that it cannot reach shell history, a log line, an error
//! message, a report or a URL. The only way out is [`ApiToken::header_value`], which marks the
//! header sensitive.
use std::fmt;
use std::path::Path;

use anyhow::{Context, bail};
use reqwest::header::HeaderValue;

/// The environment variable the token is read from when no token file is given.
pub const TOKEN_ENV: &str = "DOTO_API_TOKEN";

/// An API access token. Cloning is cheap enough; printing it shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// Wrap a token (trimmed). Fails when it is empty or cannot be sent as a header value; the
    /// error never contains the token.
    pub fn new(raw: impl Into<String>) -> anyhow::Result<ApiToken> {
        let raw = raw.into();
        let t = raw.trim();
        if t.is_empty() {
            bail!("the API token is empty");
        }
        if HeaderValue::from_str(t).is_err() || t.chars().any(char::is_whitespace) {
            bail!("the API token contains characters that cannot be sent in an HTTP header");
        }
        Ok(ApiToken(t.to_owned()))
    }

    /// The token from `path` when given (its first non-blank line), otherwise from
    /// `DOTO_API_TOKEN`. Errors name the file or the variable, never the value.
    pub fn from_env_or_file(path: Option<&Path>) -> anyhow::Result<ApiToken> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read the token file {}", p.display()))?;
                let line = text
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("");
                ApiToken::new(line).with_context(|| format!("token file {}", p.display()))
            }
            None => match std::env::var(TOKEN_ENV) {
                Ok(v) => {
                    ApiToken::new(v).with_context(|| format!("environment variable {TOKEN_ENV}"))
                }
                Err(_) => bail!(
                    "no API token: set {TOKEN_ENV} or pass --token-file (the token is never a flag value)"
                ),
            },
        }
    }

    /// The header value to send, marked sensitive so that HTTP-level debug output hides it too.
    pub(crate) fn header_value(&self) -> HeaderValue {
        let mut v = HeaderValue::from_str(&self.0).expect("checked in ApiToken::new");
        v.set_sensitive(true);
        v
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

impl fmt::Display for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_masked_in_debug_and_display() {
        let t = ApiToken::new("s3cr3t-token-value").unwrap();
        assert_eq!(format!("{t}"), "***");
        assert!(!format!("{t:?}").contains("s3cr3t"));
        assert!(!format!("{:#?}", Some(&t)).contains("s3cr3t"));
    }

    #[test]
    fn token_file_first_non_blank_line_is_read_and_errors_hide_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tok");
        std::fs::write(&p, "\n  abc123  \n").unwrap();
        let t = ApiToken::from_env_or_file(Some(&p)).unwrap();
        assert_eq!(t.header_value().to_str().unwrap(), "abc123");
        assert!(t.header_value().is_sensitive());

        std::fs::write(&p, "has space inside\n").unwrap();
        let err = format!("{:#}", ApiToken::from_env_or_file(Some(&p)).unwrap_err());
        assert!(err.contains("tok"), "{err}");
        assert!(!err.contains("space inside"), "{err}");

        let missing = dir.path().join("nope");
        let err = format!(
            "{:#}",
            ApiToken::from_env_or_file(Some(&missing)).unwrap_err()
        );
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn empty_token_is_refused() {
        assert!(ApiToken::new("   ").is_err());
    }
}
