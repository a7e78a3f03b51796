//! The configuration's tests: defaults, precedence of flags, variables and file, validation.

use super::*;
use clap::error::ErrorKind;
use std::path::PathBuf;

/// A TOML file unique to its name in this test run.
fn file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ws-mio-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The configuration from `args`, the environment `env` (the process's is not read) and
/// the file `file`, if any.
fn load(
    args: &[&str],
    env: &[(&str, &str)],
    file: Option<&PathBuf>,
) -> Result<Config, ConfigError> {
    let mut argv: Vec<OsString> = vec!["ws-mio-server".into()];
    if let Some(file) = file {
        argv.extend(["--config".into(), file.into()]);
    }
    argv.extend(args.iter().map(OsString::from));
    Config::load_from(argv, |name| {
        env.iter()
            .find(|(var, _)| name == OsStr::new(var))
            .map(|(_, value)| value.into())
    })
}

#[test]
fn the_declarations_agree() {
    layered::assert_consistent::<Config>(base_command());
}

#[test]
fn no_configuration_gives_the_defaults_on_loopback_9001() {
    let config = load(&[], &[], None).unwrap();
    assert_eq!(config, Config::default());
    // The defaults as they were before the options were declared in one place.
    let expected = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 9001)),
        workers: one_per_core(),
        max_connections: 100_000,
        max_connections_per_ip: 10_000,
        ipv6_prefix_len: 64,
        trusted_proxies: Vec::new(),
        proxy_protocol: false,
        handshake_rate: 20.0,
        handshake_burst: 100.0,
        max_message_size: 16 << 20,
        max_frame_size: 16 << 20,
        max_handshake_size: 16 << 10,
        high_water_mark: 1 << 20,
        slow_consumer: SlowConsumerPolicy::Drop,
        slow_consumer_grace: Duration::from_secs(30),
        ping_interval: Duration::from_secs(30),
        pong_timeout: Duration::from_secs(30),
        handshake_timeout: Duration::from_secs(10),
        idle_timeout: Duration::ZERO,
        close_timeout: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(10),
        reconnect_jitter: Duration::from_secs(10),
        compression: true,
        compression_min_size: 64,
        compression_level: 6,
        max_rooms: 10_000,
        max_room_members: 100_000,
        max_rooms_per_connection: 64,
        history_size: 100,
        history_idle_expiry: Duration::from_secs(3600),
        max_history_rooms: 10_000,
        memory_budget: half_the_memory(),
        admin_listen: OptionalAddr(Some("127.0.0.1:9002".parse().unwrap())),
        admin_token: None,
        tls_cert: None,
        tls_key: None,
    };
    assert_eq!(config, expected);
    assert_eq!(config.listen.to_string(), "127.0.0.1:9001");
}

/// An option set by a file, then also by a variable, then also by a flag.
struct Case<'a> {
    /// The flag and its value.
    flag: [&'static str; 2],
    /// The variable and its value.
    var: (&'static str, &'static str),
    /// The file.
    file: &'static str,
    /// The option's value in the configuration, as text.
    get: fn(&Config) -> String,
    /// With nothing set, with the file, with the file and the variable, with all three.
    expected: [&'a str; 4],
}

/// One option of each kind: a number, a duration, an enum, a switch, a list, a secret, a
/// float, and an option named unlike its field.
#[test]
fn a_flag_wins_over_a_variable_over_the_file_over_the_default() {
    let cores = one_per_core().to_string();
    let cases = [
        Case {
            flag: ["--workers", "5"],
            var: ("WS_WORKERS", "4"),
            file: "workers = 3",
            get: |c| c.workers.to_string(),
            expected: [&cores, "3", "4", "5"],
        },
        Case {
            flag: ["--ping-interval", "2"],
            var: ("WS_PING_INTERVAL", "0.25"),
            file: "ping_interval = 1.5",
            get: |c| format!("{:?}", c.ping_interval),
            expected: ["30s", "1.5s", "250ms", "2s"],
        },
        Case {
            flag: ["--slow-consumer", "drop"],
            var: ("WS_SLOW_CONSUMER", "close"),
            file: "slow_consumer = \"close\"",
            get: |c| format!("{:?}", c.slow_consumer),
            expected: ["Drop", "Close", "Close", "Drop"],
        },
        Case {
            flag: ["--compression", "off"],
            var: ("WS_COMPRESSION", "on"),
            file: "compression = false",
            get: |c| c.compression.to_string(),
            expected: ["true", "false", "true", "false"],
        },
        Case {
            flag: ["--trusted-proxies", "10.0.0.0/8,::1"],
            var: ("WS_TRUSTED_PROXIES", "192.0.2.1"),
            file: "trusted_proxies = [\"2001:db8::/32\"]",
            get: |c| {
                let list: Vec<String> = c.trusted_proxies.iter().map(|p| p.to_string()).collect();
                list.join(" ")
            },
            expected: ["", "2001:db8::/32", "192.0.2.1/32", "10.0.0.0/8 ::1/128"],
        },
    ];
    for case in cases {
        let name = case.flag[0];
        let path = file(&format!("precedence{name}"), &format!("{}\n", case.file));
        let env = [case.var];
        let got = [
            load(&[], &[], None),
            load(&[], &[], Some(&path)),
            load(&[], &env, Some(&path)),
            load(&case.flag, &env, Some(&path)),
        ]
        .map(|config| (case.get)(&config.unwrap()));
        assert_eq!(got, case.expected, "{name}");
        // The flag wins over the file without the variable too.
        let config = load(&case.flag, &[], Some(&path)).unwrap();
        assert_eq!((case.get)(&config), case.expected[3], "{name}");
    }
}

#[test]
fn a_file_may_name_every_option() {
    let table = toml::Table::try_from(Config::default()).unwrap();
    let path = file("every-option", &table.to_string());
    assert_eq!(load(&[], &[], Some(&path)).unwrap(), Config::default());
}

#[test]
fn an_unknown_key_in_the_file_is_an_error_naming_it() {
    // A key that is no option, and the chat's options, which the server does not have.
    for bad in ["no_such_key", "max_chat_message", "jwt_secret", "mode"] {
        let path = file(
            &format!("unknown-{bad}"),
            &format!("workers = 2\n{bad} = 1\n"),
        );
        match load(&[], &[], Some(&path)) {
            Err(e @ ConfigError::Resolve(ResolveError::UnknownKey { .. })) => {
                assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn negative_and_nan_durations_are_refused_naming_the_option() {
    for (args, env) in [
        (&["--ping-interval=-1"][..], &[][..]),
        (&["--ping-interval", "-0.5"][..], &[][..]),
        (&["--ping-interval", "NaN"][..], &[][..]),
        (&[][..], &[("WS_PING_INTERVAL", "-1")][..]),
    ] {
        match load(args, env, None) {
            Err(ConfigError::Resolve(ResolveError::Args(e))) => {
                assert_eq!(e.kind(), ErrorKind::ValueValidation, "{e}");
                assert!(e.to_string().contains("--ping-interval"), "{e}");
            }
            other => panic!("{args:?} {env:?}: {other:?}"),
        }
    }
    for value in ["-1", "-0.001", "nan", "-inf"] {
        let path = file(
            &format!("duration{value}"),
            &format!("ping_interval = {value}\n"),
        );
        match load(&[], &[], Some(&path)) {
            Err(ConfigError::Resolve(ResolveError::Value { key, .. })) => {
                assert_eq!(key, "ping_interval");
            }
            other => panic!("{value}: {other:?}"),
        }
    }
}

#[test]
fn out_of_range_values_are_refused() {
    for (args, name) in [
        (["--workers", "0"], "workers"),
        (["--max-handshake-size", "255"], "max_handshake_size"),
        (["--compression-level", "10"], "compression_level"),
        (["--handshake-rate", "-1"], "handshake_rate"),
        (["--handshake-rate", "NaN"], "handshake_rate"),
        (["--handshake-burst", "0.5"], "handshake_burst"),
    ] {
        assert!(
            matches!(load(&args, &[], None), Err(ConfigError::Invalid(n)) if n == name),
            "{args:?}"
        );
    }
    assert!(matches!(
        load(&["--proxy-protocol", "on"], &[], None),
        Err(ConfigError::Invalid("proxy_protocol"))
    ));
    let proxied = ["--proxy-protocol", "on", "--trusted-proxies", "10.0.0.0/8"];
    assert!(load(&proxied, &[], None).unwrap().proxy_protocol);
    // A prefix with host bits set is refused, naming the option.
    match load(&["--trusted-proxies", "10.1.2.3/8"], &[], None) {
        Err(ConfigError::Resolve(ResolveError::Args(e))) => {
            assert!(e.to_string().contains("--trusted-proxies"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let path = file("zero-workers", "workers = 0\n");
    assert!(matches!(
        load(&[], &[], Some(&path)),
        Err(ConfigError::Invalid("workers"))
    ));
}

#[test]
fn compression_is_on_off_true_false_1_0() {
    for (value, on) in [("on", true), ("true", true), ("1", true)]
        .into_iter()
        .chain([("off", false), ("false", false), ("0", false)])
    {
        assert_eq!(
            load(&["--compression", value], &[], None)
                .unwrap()
                .compression,
            on
        );
        let env = [("WS_COMPRESSION", value)];
        assert_eq!(load(&[], &env, None).unwrap().compression, on);
    }
    assert!(matches!(
        load(&["--compression", "yes"], &[], None),
        Err(ConfigError::Resolve(ResolveError::Args(_)))
    ));
}

#[test]
fn help_names_every_variable_and_default() {
    let Err(ConfigError::Resolve(ResolveError::Args(e))) = load(&["--help"], &[], None) else {
        panic!("no help");
    };
    assert_eq!(e.kind(), ErrorKind::DisplayHelp);
    let help = e.to_string();
    let mut command = Config::command();
    command.build();
    for arg in command.get_arguments() {
        let Some(var) = arg.get_env() else {
            continue;
        };
        let long = arg.get_long().unwrap();
        let start = help.find(&format!("--{long} ")).expect(long);
        let text = &help[start..];
        let text = &text[..text[2..].find("\n  --").map_or(text.len(), |end| end + 2)];
        assert!(
            text.contains(&format!("[env: {}", var.to_str().unwrap())),
            "{text}"
        );
        if !arg.get_default_values().is_empty() {
            assert!(text.contains("[default: "), "{text}");
        }
    }
    assert!(
        help.starts_with("A WebSocket server on mio and ws-proto\n"),
        "{help}"
    );
    assert!(help.contains("[default: 127.0.0.1:9001]"));
    assert!(help.contains("[default: 30]"));
}

#[test]
fn the_tls_files_come_from_any_layer_and_only_together() {
    let both = load(&["--tls-cert", "c.pem", "--tls-key", "k.pem"], &[], None).unwrap();
    assert_eq!(both.tls_cert.as_deref(), Some("c.pem".as_ref()));
    assert_eq!(both.tls_key.as_deref(), Some("k.pem".as_ref()));
    // A flag and a variable together.
    let mixed = load(&["--tls-cert", "c.pem"], &[("WS_TLS_KEY", "env.pem")], None).unwrap();
    assert_eq!(mixed.tls_key.as_deref(), Some("env.pem".as_ref()));
    let path = file("tls", "tls_cert = \"f.pem\"\ntls_key = \"fk.pem\"\n");
    let filed = load(&[], &[], Some(&path)).unwrap();
    assert_eq!(filed.tls_cert.as_deref(), Some("f.pem".as_ref()));
    assert_eq!(filed.tls_key.as_deref(), Some("fk.pem".as_ref()));
    assert!(matches!(
        load(&["--tls-cert", "c.pem"], &[], None),
        Err(ConfigError::Invalid("tls_key"))
    ));
    assert!(matches!(
        load(&[], &[("WS_TLS_KEY", "k.pem")], None),
        Err(ConfigError::Invalid("tls_cert"))
    ));
}
