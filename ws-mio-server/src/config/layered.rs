//! Settings declared once, read from layered sources.
//!
//! A settings struct derives clap's [`Args`](clap::Args) (each field with `long`, `env` and a
//! default) and serde's `Serialize` and `Deserialize`. [`resolve`] fills it from, in order of
//! precedence:
//!
//! 1. the command line;
//! 2. the environment variables the arguments name with `env`;
//! 3. the TOML file named by the [`file_arg`] argument, if the command has one, whose keys are
//!    the long option names with underscores (`--max-connections` is `max_connections`);
//! 4. the defaults the arguments declare.
//!
//! It works on the whole command, so settings structs flattened into one another
//! (`#[command(flatten)]` with `#[serde(flatten)]`) resolve together: a crate can declare its
//! own options next to another crate's. Unknown keys in the file are refused by checking them
//! against the command's arguments, which also works where serde's `deny_unknown_fields` cannot
//! be used (it does not combine with `flatten`).
//!
//! How: the command line is parsed by clap, with each environment variable's value given to
//! clap as that argument's default, so precedence between the two is clap's own. The result is
//! serialized to a TOML table; every key of the file whose argument was not on the command line
//! or in the environment replaces the table's value; the table is deserialized into the
//! settings. So every value, whatever its source, goes through the same serde declaration, and
//! values must be representable in TOML (integers up to `i64::MAX`).
//!
//! The environment is read through a function, [`process_env`] in a program, so tests can hand
//! the resolver an environment without touching the process's. (Since a variable's value becomes
//! the argument's default, an argument with conditional defaults, `default_value_if`, would
//! prefer those to its variable; none of the server's options has one.)
//!
//! A crate with options of its own declares them the same way and flattens the server's next
//! to them:
//!
//! ```
//! use clap::Command;
//! use serde::{Deserialize, Serialize};
//! use ws_mio_server::config::layered;
//!
//! /// The application's own options.
//! #[derive(clap::Args, Serialize, Deserialize)]
//! struct Greeting {
//!     /// The text sent to each new connection.
//!     #[arg(long, env = "WS_GREETING", default_value = "hello")]
//!     greeting: String,
//! }
//!
//! /// The server's options and the application's, resolved together.
//! #[derive(clap::Args, Serialize, Deserialize)]
//! struct Options {
//!     #[command(flatten)]
//!     #[serde(flatten)]
//!     server: ws_mio_server::Config,
//!     #[command(flatten, next_help_heading = "Greeting")]
//!     #[serde(flatten)]
//!     app: Greeting,
//! }
//!
//! let command = Command::new("greeter")
//!     .version("1.0")
//!     .about("Greets every connection")
//!     .arg(layered::file_arg("WS_CONFIG"));
//! # layered::assert_consistent::<Options>(command.clone());
//! // In the program: `std::env::args_os()` and `layered::process_env`.
//! let args = ["greeter", "--greeting", "hi", "--workers", "2"];
//! let options: Options = layered::resolve(command, args, |_| None)?;
//! options.server.validate()?;
//! assert_eq!((options.app.greeting.as_str(), options.server.workers), ("hi", 2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Conventions the resolver relies on, checked by [`assert_consistent`] (call it from a test):
//! an argument's key (its long name with underscores) is also its serde field name, so an option
//! named unlike its field needs `#[arg(long = "...")]` and `#[serde(rename = "...")]` alike. Serde
//! fields without an argument (`#[arg(skip = ...)]`) keep their value from the command line's
//! parse and cannot be set from the file.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::parser::{MatchesError, ValueSource};
use clap::{Arg, ArgAction, ArgMatches, Command};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// The id of the argument naming the TOML file; [`file_arg`] declares it.
pub const FILE_ARG: &str = "config";

/// `--config FILE`, also read from the environment variable `env`: add it to a command to give
/// [`resolve`] a file layer.
pub fn file_arg(env: &'static str) -> Arg {
    Arg::new(FILE_ARG)
        .long("config")
        .env(env)
        .value_name("FILE")
        .value_parser(clap::value_parser!(PathBuf))
        .help(
            "TOML file of settings, keys as the long option names with underscores; \
             the command line and the environment win over it",
        )
}

/// The process's environment, for [`resolve`].
pub fn process_env(name: &OsStr) -> Option<OsString> {
    std::env::var_os(name)
}

/// A value parser for an on/off switch: `on`, `true` or `1`, and `off`, `false` or `0`.
///
/// Use it with `action = clap::ArgAction::Set` on a `bool` field, so the switch takes a value
/// and its default can be on.
pub fn switch() -> impl TypedValueParser<Value = bool> {
    PossibleValuesParser::new([
        PossibleValue::new("on").aliases(["true", "1"]),
        PossibleValue::new("off").aliases(["false", "0"]),
    ])
    .map(|value| matches!(value.as_str(), "on" | "true" | "1"))
}

/// Why settings could not be resolved.
#[derive(Debug)]
pub enum ResolveError {
    /// The command line or an environment variable is invalid, or asks for help or the version:
    /// [`clap::Error::exit`] prints it and exits as clap does.
    Args(clap::Error),
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a TOML table.
    Parse {
        /// The file.
        path: PathBuf,
        /// Why (boxed: the error is large).
        source: Box<toml::de::Error>,
    },
    /// The file has a key that names no option.
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A value in the file is not valid for its option.
    Value {
        /// The file.
        path: PathBuf,
        /// The option's key.
        key: String,
        /// Why (boxed: the error is large).
        source: Box<toml::de::Error>,
    },
    /// The settings parsed from the command line cannot be written as TOML (an integer past
    /// `i64::MAX`, say).
    Serialize(toml::ser::Error),
    /// The merged settings cannot be read back: the settings type's clap and serde
    /// declarations disagree (see [`assert_consistent`]).
    Deserialize(Box<toml::de::Error>),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::Args(e) => write!(f, "{e}"),
            ResolveError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            ResolveError::Parse { path, source } => {
                write!(f, "invalid TOML in {}: {source}", path.display())
            }
            ResolveError::UnknownKey { path, key } => {
                write!(
                    f,
                    "unknown key `{key}` in {}: no such option",
                    path.display()
                )
            }
            ResolveError::Value { path, key, source } => write!(
                f,
                "invalid value for {key} in {}: {}",
                path.display(),
                source.message()
            ),
            ResolveError::Serialize(e) => write!(f, "a setting cannot be written as TOML: {e}"),
            ResolveError::Deserialize(e) => write!(f, "the settings cannot be read back: {e}"),
        }
    }
}

impl std::error::Error for ResolveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ResolveError::Args(e) => Some(e),
            ResolveError::Read { source, .. } => Some(source),
            ResolveError::Parse { source, .. } | ResolveError::Value { source, .. } => {
                Some(&**source)
            }
            ResolveError::UnknownKey { .. } => None,
            ResolveError::Serialize(e) => Some(e),
            ResolveError::Deserialize(e) => Some(&**e),
        }
    }
}

/// `base` with the arguments of the settings `T` added: `base` carries the program's name,
/// version, about text and, if wanted, [`file_arg`].
///
/// A derived `Args` sets the command's about text from the struct's doc comment; `base`'s own
/// about text, if it has one, is kept instead.
pub fn command<T: clap::Args>(base: Command) -> Command {
    let about = base.get_about().cloned();
    let long_about = base.get_long_about().cloned();
    let command = T::augment_args(base);
    match (about, long_about) {
        (Some(about), Some(long_about)) => command.about(about).long_about(long_about),
        (Some(about), None) => command.about(about).long_about(None::<&str>),
        (None, _) => command,
    }
}

/// `command` with the defaults of some arguments replaced, each named by its id (the field's
/// name): for an application that flattens another crate's settings and wants other defaults
/// for some of them (a chat's smaller message limit). Give the result to [`resolve_command`].
///
/// ```
/// use clap::Command;
/// use ws_mio_server::config::layered;
/// use ws_mio_server::Config;
/// let command = layered::with_defaults(
///     layered::command::<Config>(Command::new("small")),
///     &[("max_message_size", "65536")],
/// );
/// let config: Config =
///     layered::resolve_command(command, ["small"], |_| None).unwrap();
/// assert_eq!(config.max_message_size, 65536);
/// ```
pub fn with_defaults(command: Command, defaults: &[(&'static str, &'static str)]) -> Command {
    for (id, _) in defaults {
        assert!(
            command.get_arguments().any(|a| a.get_id() == id),
            "no argument {id} to give a default"
        );
    }
    command.mut_args(
        |arg| match defaults.iter().find(|(id, _)| arg.get_id() == id) {
            Some((_, value)) => arg.default_value(*value),
            None => arg,
        },
    )
}

/// The settings `T` from the command line `args` (the program's name first), the environment
/// as `env` reports it, the TOML file named by [`FILE_ARG`] if `command` has that argument,
/// and the declared defaults, in that order of precedence.
///
/// `base` carries the program's name, version, about text and, if wanted, [`file_arg`]; `T`'s
/// arguments are added to it as [`command`] does.
pub fn resolve<T, I>(
    base: Command,
    args: I,
    env: impl Fn(&OsStr) -> Option<OsString>,
) -> Result<T, ResolveError>
where
    T: clap::Args + Serialize + DeserializeOwned,
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    resolve_command(command::<T>(base), args, env)
}

/// [`resolve`] with the whole command given: [`command`]'s for `T`, perhaps with other
/// defaults ([`with_defaults`]).
pub fn resolve_command<T, I>(
    command: Command,
    args: I,
    env: impl Fn(&OsStr) -> Option<OsString>,
) -> Result<T, ResolveError>
where
    T: clap::Args + Serialize + DeserializeOwned,
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // The environment becomes the arguments' defaults; clap then reads no variable itself.
    let mut from_env = HashSet::new();
    let mut parser = command.clone().mut_args(|arg| {
        let value = arg.get_env().and_then(&env);
        let arg = arg.env(None::<&str>);
        match value {
            Some(value) => {
                from_env.insert(arg.get_id().clone());
                arg.default_value(value)
            }
            None => arg,
        }
    });
    let matches = match parser.try_get_matches_from_mut(&args) {
        Ok(matches) => matches,
        Err(e) => {
            let e = match e.kind() {
                // Help from the command as declared, which shows the variables.
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    command.try_get_matches_from(&args).err().unwrap_or(e)
                }
                _ => e,
            };
            return Err(ResolveError::Args(e));
        }
    };
    let parsed = T::from_arg_matches(&matches).map_err(ResolveError::Args)?;
    let mut table = toml::Table::try_from(&parsed).map_err(ResolveError::Serialize)?;
    if let Some(path) = file_path(&matches) {
        let text = std::fs::read_to_string(&path).map_err(|source| ResolveError::Read {
            path: path.clone(),
            source,
        })?;
        let file: toml::Table = text.parse().map_err(|source| ResolveError::Parse {
            path: path.clone(),
            source: Box::new(source),
        })?;
        let settings = settings(&parser);
        let parsed_table = table.clone();
        for (key, value) in file {
            let Some(arg) = settings.get(key.as_str()) else {
                return Err(ResolveError::UnknownKey { path, key });
            };
            // Each value is checked on its own, so an error names its key, and checked even
            // where the command line overrides it, so a broken file is always reported.
            let mut probe = parsed_table.clone();
            probe.insert(key.clone(), value.clone());
            if let Err(source) = probe.try_into::<T>() {
                let source = Box::new(source);
                return Err(ResolveError::Value { path, key, source });
            }
            let id = arg.get_id();
            let explicit = from_env.contains(id)
                || matches!(
                    matches.value_source(id.as_str()),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                );
            if !explicit {
                table.insert(key, value);
            }
        }
    }
    table
        .try_into()
        .map_err(|e| ResolveError::Deserialize(Box::new(e)))
}

/// The settings `T` with every argument at its declared default, ignoring the environment:
/// what a `Default` implementation of a settings struct can return.
///
/// # Panics
///
/// If `T` declares an argument that is required or whose default does not parse: a mistake in
/// `T`'s declaration, which a test calling this finds.
pub fn defaults<T: clap::Args>() -> T {
    let name = std::any::type_name::<T>();
    let command = T::augment_args(Command::new("defaults")).mut_args(|arg| arg.env(None::<&str>));
    let matches = command
        .try_get_matches_from(["defaults"])
        .unwrap_or_else(|e| panic!("the declared defaults of {name} do not parse: {e}"));
    T::from_arg_matches(&matches)
        .unwrap_or_else(|e| panic!("the declared defaults of {name} do not parse: {e}"))
}

/// Checks that `T`'s clap and serde declarations agree, panicking with what does not; call it
/// from a test.
///
/// It checks clap's own rules ([`Command::debug_assert`]), that the defaults survive the trip
/// through TOML unchanged, and that every option's key (its long name with underscores) is a
/// serde field of `T`, so a value from the file is never dropped silently.
pub fn assert_consistent<T>(base: Command)
where
    T: clap::Args + Serialize + DeserializeOwned,
{
    let name = std::any::type_name::<T>();
    let mut command = command::<T>(base).mut_args(|arg| arg.env(None::<&str>));
    command.build();
    command.clone().debug_assert();
    let program = command.get_name().to_owned();
    let matches = command
        .try_get_matches_from_mut([program])
        .unwrap_or_else(|e| panic!("the declared defaults of {name} do not parse: {e}"));
    let defaults = T::from_arg_matches(&matches)
        .unwrap_or_else(|e| panic!("the declared defaults of {name} do not parse: {e}"));
    let table = toml::Table::try_from(&defaults)
        .unwrap_or_else(|e| panic!("the defaults of {name} cannot be written as TOML: {e}"));
    let back: T = table
        .clone()
        .try_into()
        .unwrap_or_else(|e| panic!("the defaults of {name} cannot be read back from TOML: {e}"));
    assert_eq!(
        toml::Table::try_from(&back).ok().as_ref(),
        Some(&table),
        "the defaults of {name} change on their way through TOML"
    );
    let mut keys = HashSet::new();
    for arg in command.get_arguments().filter(|arg| is_setting(arg)) {
        let key = key(arg);
        assert!(
            keys.insert(key.clone()),
            "two options of {name} have the key {key}"
        );
        if table.contains_key(&key) {
            continue;
        }
        // An option without a default (an `Option`) is absent from the table: give it a
        // string and see whether serde takes it (or refuses its type) or ignores it.
        let mut probe = table.clone();
        probe.insert(key.clone(), toml::Value::String("probe".into()));
        if let Ok(probed) = probe.try_into::<T>() {
            let written = toml::Table::try_from(&probed).unwrap_or_default();
            assert!(
                written.contains_key(&key),
                "the option {key} of {name} is no serde field of it: a file could not set it"
            );
        }
    }
}

/// The file named by [`FILE_ARG`], if the command has that argument and it was given.
fn file_path(matches: &ArgMatches) -> Option<PathBuf> {
    match matches.try_get_one::<PathBuf>(FILE_ARG) {
        Ok(path) => path.cloned(),
        Err(MatchesError::UnknownArgument { .. }) => None,
        Err(e) => {
            panic!("the argument `{FILE_ARG}` must hold a PathBuf, as `file_arg` declares: {e}")
        }
    }
}

/// Whether `arg` is a setting: anything but the file's name, help and version.
fn is_setting(arg: &Arg) -> bool {
    arg.get_id() != FILE_ARG
        && !matches!(
            arg.get_action(),
            ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
        )
}

/// An argument's key in the file and in the serialized settings.
fn key(arg: &Arg) -> String {
    match arg.get_long() {
        Some(long) => long.replace('-', "_"),
        None => arg.get_id().as_str().to_owned(),
    }
}

/// The settings of a built command, by key.
fn settings(command: &Command) -> HashMap<String, &Arg> {
    command
        .get_arguments()
        .filter(|arg| is_setting(arg))
        .map(|arg| (key(arg), arg))
        .collect()
}

#[cfg(test)]
mod tests;
