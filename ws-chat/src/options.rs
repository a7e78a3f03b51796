//! The `ws-chat` binary's options: the server's ([`ws_mio_server::Config`]), the chat's
//! ([`ChatConfig`]) and the cluster's ([`RedisOptions`]), each declared once and resolved
//! together: flags over `WS_*` variables over the TOML file (`--config FILE`) over the
//! defaults.

use crate::ChatConfig;
use clap::Command;
use serde::{Deserialize, Serialize};
use std::ffi::{OsStr, OsString};
use ws_mio_server::config::{layered, ConfigError};
use ws_mio_server::Config;
use ws_redis::RedisOptions;

/// Everything `ws-chat` can be told.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct Options {
    /// The server's settings (its `mode` is not used: the application is the chat).
    #[command(flatten)]
    #[serde(flatten)]
    pub server: Config,
    /// The chat's settings.
    #[command(flatten, next_help_heading = "Chat")]
    #[serde(flatten)]
    pub chat: ChatConfig,
    /// Several instances as one chat, through Redis.
    #[command(flatten, next_help_heading = "Cluster")]
    #[serde(flatten)]
    pub cluster: RedisOptions,
}

/// The server options whose defaults the chat sets otherwise. Chat messages are small: a
/// connection may hold one partial message of at most this size (the server's default, 16
/// MiB, suits an echo server taking any message).
pub const CHAT_DEFAULTS: &[(&str, &str)] = &[("max_message_size", "65536")];

impl Options {
    /// The command line: name, version, about text, `--config FILE` (`WS_CONFIG`), every
    /// option, with the chat's defaults (`CHAT_DEFAULTS`: a 64 KiB message limit).
    pub fn command() -> Command {
        layered::with_defaults(layered::command::<Options>(base_command()), CHAT_DEFAULTS)
    }

    /// The options from the process's command line, environment and the file they name.
    pub fn load() -> Result<Options, ConfigError> {
        Options::load_from(std::env::args_os(), layered::process_env)
    }

    /// The options from `args` (the program's name first), the environment as `env` reports
    /// it, and the file they name; checked.
    pub fn load_from<I>(
        args: I,
        env: impl Fn(&OsStr) -> Option<OsString>,
    ) -> Result<Options, ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<OsString>,
    {
        let options: Options = layered::resolve_command(Options::command(), args, env)?;
        options.server.validate()?;
        options.chat.validate()?;
        options.cluster.validate()?;
        Ok(options)
    }
}

fn base_command() -> Command {
    Command::new("ws-chat")
        .version(env!("CARGO_PKG_VERSION"))
        .about("The chat on ws-mio-server: rooms, presence, history, direct messages, a web page")
        .arg(layered::file_arg("WS_CONFIG"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ws-chat-options-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load(
        flags: &[&str],
        env: &[(&str, &str)],
        file: Option<&PathBuf>,
    ) -> Result<Options, ConfigError> {
        let mut args = vec![OsString::from("ws-chat")];
        args.extend(flags.iter().map(OsString::from));
        if let Some(path) = file {
            args.extend([OsString::from("--config"), path.into()]);
        }
        let env: Vec<(OsString, OsString)> =
            env.iter().map(|(k, v)| (k.into(), v.into())).collect();
        Options::load_from(args, |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn the_declarations_agree() {
        layered::assert_consistent::<Options>(base_command());
    }

    #[test]
    fn no_configuration_gives_both_defaults() {
        let options = load(&[], &[], None).unwrap();
        let chat_sized = Config {
            max_message_size: 64 << 10,
            ..Config::default()
        };
        assert_eq!(options.server, chat_sized);
        assert_eq!(options.chat, ChatConfig::default());
        assert_eq!(options.cluster.redis, None, "on its own unless asked");
        assert_eq!(
            (options.server.history_size, options.chat.max_message_bytes),
            (100, 8192)
        );
    }

    /// A list, a secret, a float, an option named unlike its field, and a server option set
    /// through the chat's command.
    #[test]
    fn a_flag_wins_over_a_variable_over_the_file_over_the_default() {
        /// The flag, the variable, the file, the value read back, and the values expected with
        /// nothing set, the file, the file and the variable, all three.
        type Case = (
            [&'static str; 2],
            (&'static str, &'static str),
            &'static str,
            Get,
            [&'static str; 4],
        );
        type Get = fn(&Options) -> String;
        let cases: [Case; 6] = [
            (
                ["--allowed-origins", "https://c"],
                ("WS_ALLOWED_ORIGINS", "https://e1,https://e2"),
                "allowed_origins = [\"https://f\"]",
                |o| o.chat.allowed_origins.join(" "),
                ["", "https://f", "https://e1 https://e2", "https://c"],
            ),
            (
                ["--jwt-secret", "c"],
                ("WS_JWT_SECRET", "e"),
                "jwt_secret = \"f\"",
                |o| format!("{:?}", o.chat.jwt_secret),
                ["None", "Some(\"f\")", "Some(\"e\")", "Some(\"c\")"],
            ),
            (
                ["--rate-limit", "3.5"],
                ("WS_RATE_LIMIT", "2"),
                "rate_limit = 1.5",
                |o| o.chat.rate_limit.to_string(),
                ["10", "1.5", "2", "3.5"],
            ),
            (
                ["--max-chat-message", "300"],
                ("WS_MAX_CHAT_MESSAGE", "200"),
                "max_chat_message = 100",
                |o| o.chat.max_message_bytes.to_string(),
                ["8192", "100", "200", "300"],
            ),
            (
                ["--redis", "redis://c:6379"],
                ("WS_REDIS", "redis://e:6379"),
                "redis = \"redis://f:6379\"",
                |o| format!("{:?}", o.cluster.redis),
                [
                    "None",
                    "Some(\"redis://f:6379\")",
                    "Some(\"redis://e:6379\")",
                    "Some(\"redis://c:6379\")",
                ],
            ),
            (
                ["--max-rooms", "30"],
                ("WS_MAX_ROOMS", "20"),
                "max_rooms = 10",
                |o| o.server.max_rooms.to_string(),
                ["10000", "10", "20", "30"],
            ),
        ];
        for (flag, var, text, get, expected) in cases {
            let path = file(&format!("precedence{}", flag[0]), &format!("{text}\n"));
            let env = [var];
            let got = [
                load(&[], &[], None),
                load(&[], &[], Some(&path)),
                load(&[], &env, Some(&path)),
                load(&flag, &env, Some(&path)),
            ]
            .map(|options| get(&options.unwrap()));
            assert_eq!(got, expected, "{}", flag[0]);
        }
    }

    #[test]
    fn a_set_but_empty_secret_refuses_to_start_wherever_it_comes_from() {
        let empty = |r: Result<Options, ConfigError>| matches!(r, Err(ConfigError::Invalid(m)) if m.starts_with("jwt_secret"));
        let path = file("secret", "jwt_secret = \"\"\n");
        assert!(empty(load(&[], &[], Some(&path))), "in the file");
        let path = file("secret-set", "jwt_secret = \"f\"\n");
        let env = [("WS_JWT_SECRET", "")];
        assert!(empty(load(&[], &env, Some(&path))), "in the environment");
        assert!(
            empty(load(&["--jwt-secret", " "], &[], Some(&path))),
            "as a flag"
        );
        // Unset, it is guest mode.
        assert_eq!(load(&[], &[], None).unwrap().chat.jwt_secret, None);
    }

    #[test]
    fn a_rate_of_zero_or_a_burst_under_one_is_refused() {
        for args in [["--rate-limit", "0"], ["--rate-burst", "0.5"]] {
            assert!(
                matches!(
                    load(&args, &[], None),
                    Err(ConfigError::Invalid("rate_limit"))
                ),
                "{args:?}"
            );
        }
    }

    #[test]
    fn help_hides_the_secret_and_the_redis_url_which_may_hold_a_password() {
        let mut command = Options::command();
        command.build();
        for id in ["jwt_secret", "redis"] {
            let arg = command.get_arguments().find(|a| a.get_id() == id);
            assert!(arg.unwrap().is_hide_env_values_set(), "{id}");
        }
    }

    #[test]
    fn a_redis_url_that_is_not_one_is_refused_wherever_it_comes_from() {
        let refused = |r: Result<Options, ConfigError>| matches!(r, Err(ConfigError::Invalid(m)) if m.starts_with("redis"));
        assert!(refused(load(&["--redis", "http://x"], &[], None)));
        assert!(refused(load(&[], &[("WS_REDIS", "nonsense")], None)));
        let path = file("redis", "redis = \"localhost:6379\"\n");
        assert!(refused(load(&[], &[], Some(&path))));
        let ok = load(&["--redis", "redis://127.0.0.1:6379/2"], &[], None).unwrap();
        assert_eq!(
            ok.cluster.redis.as_deref(),
            Some("redis://127.0.0.1:6379/2")
        );
    }

    /// The README's table of options: the same flags, variables and defaults as the command.
    #[test]
    fn the_readme_table_matches_the_options() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let readme = include_str!("../../README.md");
        let mut rows = std::collections::BTreeMap::new();
        for line in readme.lines().filter(|line| line.starts_with("| `--")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let flag = cells[1].trim_matches('`').trim_start_matches("--");
            // "16 MiB (chat: 64 KiB)": the chat's own default is the one in brackets.
            let cell = cells[3];
            let cell = match cell.split_once(" (chat: ") {
                Some((_, chat)) => chat.trim_end_matches(')'),
                None => cell,
            };
            let default = match cell {
                "none" | "all" => None,
                "cores" => Some(cores.to_string()),
                "half of RAM" => Some(ws_mio_server::config::half_the_memory().to_string()),
                text => Some(if let Some(mib) = text.strip_suffix(" MiB") {
                    (mib.parse::<u64>().unwrap() << 20).to_string()
                } else if let Some(kib) = text.strip_suffix(" KiB") {
                    (kib.parse::<u64>().unwrap() << 10).to_string()
                } else {
                    text.to_owned()
                }),
            };
            rows.insert(
                flag.to_owned(),
                (cells[2].trim_matches('`').to_owned(), default),
            );
        }
        let mut command = Options::command();
        command.build();
        let mut options = std::collections::BTreeMap::new();
        for arg in command.get_arguments() {
            let (Some(long), Some(var)) = (arg.get_long(), arg.get_env()) else {
                continue;
            };
            let default = match arg.get_default_values() {
                [] => None,
                [default] => Some(default.to_str().unwrap().to_owned()),
                more => panic!("--{long} has several defaults: {more:?}"),
            };
            options.insert(long.to_owned(), (var.to_str().unwrap().to_owned(), default));
        }
        assert_eq!(rows, options);
    }
}
