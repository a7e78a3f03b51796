//! The resolver's tests.

use super::*;
use crate::config::seconds;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// Settings of one crate.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
struct Inner {
    /// A number.
    #[arg(long, env = "T_COUNT", default_value_t = 1)]
    count: u32,
    /// A duration.
    #[arg(long, env = "T_WAIT", default_value = "2", value_parser = seconds::parse)]
    #[arg(allow_negative_numbers = true)]
    #[serde(with = "seconds")]
    wait: Duration,
    /// Not an option.
    #[arg(skip = 7u32)]
    internal: u32,
}

/// Another crate's settings with the first crate's flattened into them.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
struct Outer {
    #[command(flatten)]
    #[serde(flatten)]
    inner: Inner,
    /// A name.
    #[arg(long, env = "T_NAME", default_value = "x")]
    name: String,
    /// A plain flag.
    #[arg(long, env = "T_LOUD")]
    loud: bool,
    /// An option whose field has another name.
    #[arg(
        id = "max_items",
        long = "max-items",
        env = "T_MAX_ITEMS",
        default_value_t = 3
    )]
    #[serde(rename = "max_items")]
    items: usize,
    /// A list.
    #[arg(long, env = "T_TAGS", value_delimiter = ',')]
    tags: Vec<String>,
    /// Optional.
    #[arg(long, env = "T_NOTE")]
    note: Option<String>,
}

fn command() -> Command {
    Command::new("test")
        .version("1.0")
        .about("The test program")
        .arg(file_arg("T_CONFIG"))
}

/// A TOML file unique to the calling test.
fn file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ws-layered-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn resolve_with(
    args: &[&str],
    env: &[(&str, &str)],
    file: Option<&Path>,
) -> Result<Outer, ResolveError> {
    let mut argv: Vec<OsString> = vec!["test".into()];
    if let Some(file) = file {
        argv.push("--config".into());
        argv.push(file.into());
    }
    argv.extend(args.iter().map(OsString::from));
    let env: HashMap<OsString, OsString> = env.iter().map(|(k, v)| (k.into(), v.into())).collect();
    resolve(command(), argv, |name| env.get(name).cloned())
}

fn defaults() -> Outer {
    super::defaults()
}

#[test]
fn declarations_agree() {
    assert_consistent::<Outer>(command());
}

#[test]
fn nothing_given_is_the_declared_defaults() {
    let outer = resolve_with(&[], &[], None).unwrap();
    assert_eq!(outer, defaults());
    assert_eq!(outer.inner.count, 1);
    assert_eq!(outer.inner.wait, Duration::from_secs(2));
    assert_eq!(outer.inner.internal, 7);
    assert_eq!(
        (outer.name.as_str(), outer.loud, outer.items),
        ("x", false, 3)
    );
    assert!(outer.tags.is_empty() && outer.note.is_none());
}

#[test]
fn flags_win_over_the_environment_over_the_file_over_defaults_across_flatten() {
    let path = file(
        "precedence",
        "count = 10\nwait = 0.5\nname = \"file\"\nmax_items = 30\nloud = true\n\
         tags = [\"f\"]\nnote = \"file\"\n",
    );
    // The file alone.
    let outer = resolve_with(&[], &[], Some(&path)).unwrap();
    assert_eq!(outer.inner.count, 10);
    assert_eq!(outer.inner.wait, Duration::from_millis(500));
    assert_eq!(outer.name, "file");
    assert_eq!(outer.items, 30);
    assert!(outer.loud);
    assert_eq!(outer.tags, ["f"]);
    assert_eq!(outer.note.as_deref(), Some("file"));
    assert_eq!(outer.inner.internal, 7);
    // The environment over the file.
    let env = [
        ("T_COUNT", "20"),
        ("T_WAIT", "1"),
        ("T_MAX_ITEMS", "40"),
        ("T_TAGS", "e1,e2"),
        ("T_NOTE", "env"),
    ];
    let outer = resolve_with(&[], &env, Some(&path)).unwrap();
    assert_eq!(outer.inner.count, 20);
    assert_eq!(outer.inner.wait, Duration::from_secs(1));
    assert_eq!(outer.items, 40);
    assert_eq!(outer.tags, ["e1", "e2"]);
    assert_eq!(outer.note.as_deref(), Some("env"));
    assert_eq!(outer.name, "file");
    // Flags over the environment.
    let args = [
        "--count",
        "30",
        "--max-items=50",
        "--tags",
        "c",
        "--name",
        "flag",
    ];
    let outer = resolve_with(&args, &env, Some(&path)).unwrap();
    assert_eq!(outer.inner.count, 30);
    assert_eq!(outer.inner.wait, Duration::from_secs(1));
    assert_eq!(outer.items, 50);
    assert_eq!(outer.tags, ["c"]);
    assert_eq!(outer.name, "flag");
}

#[test]
fn the_file_can_come_from_the_environment() {
    let path = file("from-env", "count = 4\n");
    let outer = resolve_with(&[], &[("T_CONFIG", path.to_str().unwrap())], None).unwrap();
    assert_eq!(outer.inner.count, 4);
}

#[test]
fn unknown_keys_are_named() {
    for (name, text, bad) in [
        ("unknown", "count = 1\nno_such = 2\n", "no_such"),
        ("internal", "internal = 2\n", "internal"),
        ("field-name", "items = 2\n", "items"),
        ("file-key", "config = \"x.toml\"\n", "config"),
        ("table", "[inner]\ncount = 2\n", "inner"),
    ] {
        let path = file(name, text);
        match resolve_with(&[], &[], Some(&path)) {
            Err(e @ ResolveError::UnknownKey { .. }) => {
                assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
                let ResolveError::UnknownKey { key, .. } = e else {
                    unreachable!()
                };
                assert_eq!(key, bad);
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn a_bad_value_in_the_file_names_its_key_even_when_overridden() {
    let path = file("bad-value", "count = 1\nwait = -1\n");
    for args in [&[][..], &["--wait", "3"][..]] {
        match resolve_with(args, &[], Some(&path)) {
            Err(e @ ResolveError::Value { .. }) => {
                assert!(e.to_string().contains("invalid value for wait"), "{e}");
                assert!(
                    e.to_string().ends_with("a duration cannot be negative"),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    let path = file("bad-type", "count = \"many\"\n");
    assert!(matches!(
        resolve_with(&[], &[], Some(&path)),
        Err(ResolveError::Value { key, .. }) if key == "count"
    ));
}

#[test]
fn bad_values_on_the_command_line_or_in_the_environment_name_the_option() {
    for (args, env) in [
        (&["--wait=-1"][..], &[][..]),
        (&["--wait", "-1"][..], &[][..]),
        (&[][..], &[("T_WAIT", "-1")][..]),
        (&["--wait", "NaN"][..], &[][..]),
    ] {
        match resolve_with(args, env, None) {
            Err(ResolveError::Args(e)) => {
                assert_eq!(e.kind(), ErrorKind::ValueValidation);
                assert!(e.to_string().contains("--wait"), "{e}");
                let source = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<seconds::SecondsError>());
                assert!(matches!(
                    source,
                    Some(seconds::SecondsError::Negative | seconds::SecondsError::NotANumber)
                ));
            }
            other => panic!("{args:?} {env:?}: {other:?}"),
        }
    }
}

#[test]
fn a_missing_or_malformed_file_is_reported() {
    let missing = std::env::temp_dir().join("ws-layered-no-such-file.toml");
    assert!(matches!(
        resolve_with(&[], &[], Some(&missing)),
        Err(ResolveError::Read { .. })
    ));
    let path = file("malformed", "count = \n");
    assert!(matches!(
        resolve_with(&[], &[], Some(&path)),
        Err(ResolveError::Parse { .. })
    ));
}

#[test]
fn help_shows_the_variables_and_defaults() {
    let Err(ResolveError::Args(e)) = resolve_with(&["--help"], &[], None) else {
        panic!("no help");
    };
    assert_eq!(e.kind(), ErrorKind::DisplayHelp);
    let help = e.to_string();
    assert!(help.starts_with("The test program\n"), "{help}");
    for text in [
        "--max-items",
        "[env: T_MAX_ITEMS=",
        "[default: 3]",
        "--config <FILE>",
    ] {
        assert!(help.contains(text), "{text} missing from {help}");
    }
}

#[test]
fn seconds_take_fractions_and_survive_the_trip_through_toml() {
    assert_eq!(seconds::parse("0.25"), Ok(Duration::from_millis(250)));
    assert_eq!(seconds::parse("0"), Ok(Duration::ZERO));
    assert_eq!(seconds::parse("-0.5"), Err(seconds::SecondsError::Negative));
    assert_eq!(seconds::parse("inf"), Err(seconds::SecondsError::TooLarge));
    assert_eq!(
        seconds::parse("nan"),
        Err(seconds::SecondsError::NotANumber)
    );
    assert!(matches!(
        seconds::parse("soon"),
        Err(seconds::SecondsError::Malformed(_))
    ));
    for text in [
        "0.3",
        "1.1",
        "0.000000001",
        "86400.123456789",
        "1e9",
        "2.5e-7",
    ] {
        let wait = seconds::parse(text).unwrap();
        let outer = Outer {
            inner: Inner {
                wait,
                ..defaults().inner
            },
            ..defaults()
        };
        let back: Outer = toml::Table::try_from(&outer).unwrap().try_into().unwrap();
        assert_eq!(back.inner.wait, wait, "{text}");
    }
}

#[test]
fn the_switch_takes_on_off_true_false_1_0() {
    let command = Command::new("t").arg(Arg::new("s").long("s").value_parser(switch()));
    for (text, on) in [("on", true), ("true", true), ("1", true)]
        .into_iter()
        .chain([("off", false), ("false", false), ("0", false)])
    {
        let matches = command
            .clone()
            .try_get_matches_from(["t", "--s", text])
            .unwrap();
        assert_eq!(matches.get_one::<bool>("s"), Some(&on), "{text}");
    }
    assert!(command.try_get_matches_from(["t", "--s", "yes"]).is_err());
}
