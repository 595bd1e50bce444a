//! Profiles: named connection settings in a TOML file, so that the base URL and the account need
//! not be retyped. The file is `--config PATH`, else `$XDG_CONFIG_HOME/doto-bulk/config.toml`,
//! else `~/.config/doto-bulk/config.toml`:
//!
//! ```toml
//! [profile.prod]
//! base_url = "https://app.usendoto.com"
//! account_id = 42
//! token_file = "~/.config/doto-bulk/prod.token"
//! rate = "3000/min"
//! search_rate = "100/min"
//! phone_region = "GB"
//! ```
//!
//! A profile is chosen with `--profile NAME` or `DOTO_PROFILE`; flags and environment variables
//! override its values. A token is never read from this file: a key that looks like one makes
//! the file an error (its value is not printed).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::api::RateLimit;
use crate::normalise::Region;

/// Keys refused anywhere in the file: a token belongs in `token_file` or `DOTO_API_TOKEN`.
const TOKEN_KEYS: [&str; 5] = [
    "token",
    "api_token",
    "api_access_token",
    "access_token",
    "doto_api_token",
];

/// One profile, as checked: every value parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    pub name: String,
    pub base_url: Option<String>,
    pub account_id: Option<u64>,
    pub token_file: Option<PathBuf>,
    pub rate: Option<RateLimit>,
    pub search_rate: Option<RateLimit>,
    pub phone_region: Option<Region>,
}

/// A profile as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    base_url: Option<String>,
    account_id: Option<u64>,
    token_file: Option<String>,
    rate: Option<String>,
    search_rate: Option<String>,
    phone_region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    profile: BTreeMap<String, RawProfile>,
}

/// The config file used when `--config` is not given: `$XDG_CONFIG_HOME/doto-bulk/config.toml`
/// when that variable is an absolute path, else `$HOME/.config/doto-bulk/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
    let base = match xdg {
        Some(p) if p.is_absolute() => p,
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("doto-bulk").join("config.toml"))
}

/// The profile `name` from the config file `explicit` (else the default path), or none when no
/// profile is asked for. A missing file, an unknown name or a bad value is an error naming it.
pub fn load(explicit: Option<&Path>, name: Option<&str>) -> Result<Option<Profile>> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => default_path().context(
            "no config file: neither XDG_CONFIG_HOME nor HOME is set (pass --config PATH)",
        )?,
    };
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: cannot read the config file that profile {name:?} is to come from",
            path.display()
        )
    })?;
    parse(&text, &path, name).map(Some)
}

/// Profile `name` of the config file `path` holding `text`.
fn parse(text: &str, path: &Path, name: &str) -> Result<Profile> {
    let table: toml::Table = toml::from_str(text).map_err(|e| syntax_error(text, path, &e))?;
    refuse_tokens(&table, path, "")?;
    let file: RawFile = toml::Value::Table(table)
        .try_into()
        .with_context(|| format!("{}: not a doto-bulk config file", path.display()))?;
    let Some(raw) = file.profile.get(name) else {
        let known: Vec<&str> = file.profile.keys().map(String::as_str).collect();
        bail!(
            "{}: no profile {name:?}; {}",
            path.display(),
            match known.is_empty() {
                true => "the file has no [profile.NAME] table".to_owned(),
                false => format!("its profiles: {}", known.join(", ")),
            }
        );
    };
    checked(raw, path, name)
}

/// A TOML syntax error by line and message only: the offending line is not quoted, since it may
/// hold a secret.
fn syntax_error(text: &str, path: &Path, e: &toml::de::Error) -> anyhow::Error {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let at = line.map(|l| format!(" line {l}:")).unwrap_or_default();
    anyhow::anyhow!(
        "{}:{at} not valid TOML: {}",
        path.display(),
        e.message().trim()
    )
}

/// A key named like a token anywhere in `table` is an error (naming the key, never the value).
fn refuse_tokens(table: &toml::Table, path: &Path, prefix: &str) -> Result<()> {
    for (k, v) in table {
        let key = format!("{prefix}{k}");
        if TOKEN_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
            bail!(
                "{}: {key}: a token is never read from the config file (anyone who can read the \
                 file could act on the account); put it in a file named by `token_file` \
                 (chmod 600) or in DOTO_API_TOKEN, and remove it from here",
                path.display()
            );
        }
        if let toml::Value::Table(t) = v {
            refuse_tokens(t, path, &format!("{key}."))?;
        }
    }
    Ok(())
}

/// Parse the profile's values; a bad one is an error naming the file, the profile and the key.
fn checked(raw: &RawProfile, path: &Path, name: &str) -> Result<Profile> {
    let at = |key: &str| format!("{}: profile {name}: {key}", path.display());
    let rate = |key: &str, v: &Option<String>| -> Result<Option<RateLimit>> {
        v.as_deref()
            .map(|s| {
                s.parse::<RateLimit>()
                    .map_err(|e| anyhow::anyhow!("{}: {e}", at(key)))
            })
            .transpose()
    };
    let phone_region = raw
        .phone_region
        .as_deref()
        .map(|s| {
            crate::cli::parse_phone_region(s)
                .map_err(|e| anyhow::anyhow!("{}: {e}", at("phone_region")))
        })
        .transpose()?;
    Ok(Profile {
        name: name.to_owned(),
        base_url: raw.base_url.clone(),
        account_id: raw.account_id,
        token_file: raw.token_file.as_deref().map(|p| expand_home(p, path)),
        rate: rate("rate", &raw.rate)?,
        search_rate: rate("search_rate", &raw.search_rate)?,
        phone_region,
    })
}

/// `~/x` is under the home directory; a relative path is relative to the config file's folder.
fn expand_home(p: &str, config: &Path) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let p = PathBuf::from(p);
    match (p.is_relative(), config.parent()) {
        (true, Some(dir)) => dir.join(p),
        _ => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[profile.prod]
base_url = "https://example.test"
account_id = 7
token_file = "prod.token"
rate = "50/s"
phone_region = "GB"

[profile.staging]
account_id = 8
"#;

    #[test]
    fn a_profile_is_read_with_its_values_parsed() {
        let p = parse(FILE, Path::new("/etc/d/config.toml"), "prod").unwrap();
        assert_eq!(p.base_url.as_deref(), Some("https://example.test"));
        assert_eq!(p.account_id, Some(7));
        assert_eq!(p.token_file, Some(PathBuf::from("/etc/d/prod.token")));
        assert_eq!(p.rate, Some("50/s".parse().unwrap()));
        assert_eq!(
            p.phone_region.map(|r| r.as_str().to_owned()),
            Some("GB".into())
        );
        assert_eq!(p.search_rate, None);
    }

    #[test]
    fn an_unknown_profile_lists_the_known_ones() {
        let e = parse(FILE, Path::new("c.toml"), "dev")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no profile \"dev\"") && e.contains("prod, staging"),
            "{e}"
        );
    }

    #[test]
    fn a_token_in_the_file_is_refused_without_printing_it() {
        let text = "[profile.prod]\naccount_id = 1\napi_access_token = \"s3cr3t\"\n";
        let e = format!(
            "{:#}",
            parse(text, Path::new("c.toml"), "prod").unwrap_err()
        );
        assert!(
            e.contains("profile.prod.api_access_token") && e.contains("never read"),
            "{e}"
        );
        assert!(!e.contains("s3cr3t"), "{e}");
        // Even a broken line holding a token is not quoted back.
        let e = format!(
            "{:#}",
            parse("token = \"s3cr3t", Path::new("c.toml"), "p").unwrap_err()
        );
        assert!(e.contains("line 1") && !e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn bad_values_and_unknown_keys_name_the_key() {
        let e = parse("[profile.p]\nrate = \"fast\"\n", Path::new("c.toml"), "p").unwrap_err();
        assert!(e.to_string().contains("profile p: rate"), "{e}");
        let e = parse("[profile.p]\nbase = \"x\"\n", Path::new("c.toml"), "p").unwrap_err();
        assert!(format!("{e:#}").contains("base"), "{e:#}");
    }
}
