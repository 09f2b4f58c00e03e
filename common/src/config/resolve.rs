//! How a tool learns its environment: `--env` or `DREICHOR_ENV` (SPEC.md, "Configuration
//! shared by the three tools").
//!
//! The environment decides which database the URL must name, so it is never guessed: there
//! is no default, the spellings are exactly `dev` and `prod`, and a flag and a variable that
//! disagree are refused rather than one of them winning. A mistyped environment must stop the
//! tool, not quietly select the other database.

use super::env::Env;
use super::error::ConfigError;
use super::ENV_VAR;

/// Parses `value`, naming `origin` (`--env`, `DREICHOR_ENV`) in the error.
fn parse_from(value: &str, origin: &'static str) -> Result<Env, ConfigError> {
    match value {
        "dev" => Ok(Env::Dev),
        "prod" => Ok(Env::Prod),
        _ => Err(ConfigError::EnvInvalid {
            origin,
            value: value.to_owned(),
        }),
    }
}

impl std::str::FromStr for Env {
    type Err = ConfigError;

    /// Exactly `dev` or `prod`: no other case, no surrounding whitespace, no abbreviations.
    fn from_str(value: &str) -> Result<Env, ConfigError> {
        parse_from(value, "the environment")
    }
}

/// Resolves the environment from the `--env` flag and the `DREICHOR_ENV` value.
///
/// One of them is required; when both are given they must agree. An empty `DREICHOR_ENV`
/// counts as unset (an `export DREICHOR_ENV=` left in a file), but an empty `--env` was
/// typed on purpose and is refused. An invalid `DREICHOR_ENV` is refused even when `--env`
/// is given: a broken setting is reported, not masked.
///
/// ```
/// use common::config::{resolve_env, Env};
/// assert_eq!(resolve_env(Some("prod"), None).unwrap(), Env::Prod);
/// assert_eq!(resolve_env(None, Some("dev")).unwrap(), Env::Dev);
/// assert!(resolve_env(Some("dev"), Some("prod")).is_err());
/// ```
pub fn resolve_env(flag: Option<&str>, var: Option<&str>) -> Result<Env, ConfigError> {
    let flag = flag.map(|v| parse_from(v, "--env")).transpose()?;
    let var = var
        .filter(|v| !v.is_empty())
        .map(|v| parse_from(v, ENV_VAR))
        .transpose()?;
    match (flag, var) {
        (Some(flag), Some(var)) if flag != var => Err(ConfigError::EnvConflict { flag, var }),
        (Some(env), _) | (None, Some(env)) => Ok(env),
        (None, None) => Err(ConfigError::EnvMissing),
    }
}

/// [`resolve_env`] with `DREICHOR_ENV` read from the process environment. A value that is
/// not valid Unicode is refused as an invalid environment.
pub fn resolve_env_from_process(flag: Option<&str>) -> Result<Env, ConfigError> {
    let var = read_var(ENV_VAR);
    resolve_env(flag, var.as_deref())
}

/// Reads a variable of the process environment. Bytes that are not UTF-8 become U+FFFD,
/// which every validator here refuses, so a mangled value is reported instead of dropped.
pub(super) fn read_var(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_from_flag_only() {
        assert_eq!(resolve_env(Some("dev"), None).unwrap(), Env::Dev);
        assert_eq!(resolve_env(Some("prod"), None).unwrap(), Env::Prod);
    }

    #[test]
    fn env_from_variable_only() {
        assert_eq!(resolve_env(None, Some("prod")).unwrap(), Env::Prod);
    }

    #[test]
    fn env_from_flag_and_variable_that_agree() {
        assert_eq!(resolve_env(Some("prod"), Some("prod")).unwrap(), Env::Prod);
    }

    #[test]
    fn env_refuses_flag_and_variable_that_disagree() {
        let err = resolve_env(Some("dev"), Some("prod")).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::EnvConflict {
                    flag: Env::Dev,
                    var: Env::Prod
                }
            ),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .contains("--env dev and DREICHOR_ENV=prod disagree"));
    }

    #[test]
    fn env_refuses_neither_flag_nor_variable() {
        for var in [None, Some("")] {
            let err = resolve_env(None, var).unwrap_err();
            assert!(matches!(err, ConfigError::EnvMissing), "{err:?}");
            assert!(err.to_string().contains("--env dev or --env prod"));
        }
    }

    #[test]
    fn env_treats_an_empty_variable_as_unset() {
        assert_eq!(resolve_env(Some("dev"), Some("")).unwrap(), Env::Dev);
    }

    #[test]
    fn env_refuses_bad_values() {
        for bad in [
            "",
            "Dev",
            "PROD",
            "production",
            " dev",
            "dev\n",
            "test",
            "d",
        ] {
            let err = resolve_env(Some(bad), None).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::EnvInvalid {
                        origin: "--env",
                        ..
                    }
                ),
                "{err:?}"
            );
            assert!(err.to_string().contains("must be exactly dev or prod"));
            if !bad.is_empty() {
                let err = resolve_env(None, Some(bad)).unwrap_err();
                assert!(
                    matches!(
                        err,
                        ConfigError::EnvInvalid {
                            origin: ENV_VAR,
                            ..
                        }
                    ),
                    "{err:?}"
                );
                // A broken variable is reported even when the flag is given.
                let err = resolve_env(Some("dev"), Some(bad)).unwrap_err();
                assert!(matches!(err, ConfigError::EnvInvalid { .. }), "{err:?}");
            }
            assert!(bad.parse::<Env>().is_err());
        }
    }

    #[test]
    fn env_names_databases_and_the_other_environment() {
        assert_eq!(Env::Dev.database(), "dreichor_dev");
        assert_eq!(Env::Prod.database(), "dreichor_prod");
        assert_eq!(Env::Dev.other(), Env::Prod);
        assert_eq!(Env::Prod.other(), Env::Dev);
        assert_eq!(Env::Prod.to_string(), "prod");
        assert_eq!("dev".parse::<Env>().unwrap(), Env::Dev);
        assert_eq!(Env::Dev.as_str(), "dev");
    }
}
