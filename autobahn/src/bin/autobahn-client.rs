//! The Autobahn testee for the client role: asks wstest's fuzzing server how many cases there
//! are, runs each one echoing every message, then asks for the reports to be written.
//!
//! Usage: `autobahn-client --url ws://127.0.0.1:9002 --agent NAME [--ca FILE]`
//!
//! A `wss://` url connects over TLS, trusting the CA certificates in the PEM file `--ca`, or
//! the Mozilla roots without it.

use std::process::ExitCode;
use ws_proto::Message;

fn arg(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(&args, "--url").unwrap_or_else(|| "ws://127.0.0.1:9002".to_string());
    let agent = arg(&args, "--agent").unwrap_or_else(|| "ws-proto".to_string());
    let endpoint = match autobahn::Endpoint::parse(&url, arg(&args, "--ca").as_deref()) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            eprintln!("autobahn-client: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&endpoint, &agent) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autobahn-client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(endpoint: &autobahn::Endpoint, agent: &str) -> std::io::Result<()> {
    let mut count = None;
    let (stream, conn, leftover) = autobahn::connect(endpoint, "/getCaseCount")?;
    autobahn::drive(stream, conn, &leftover, |_, message| {
        if let Message::Text(text) = message {
            count = text.as_str().trim().parse::<u32>().ok();
        }
    })?;
    let count = count.ok_or_else(|| std::io::Error::other("no case count received"))?;
    eprintln!("autobahn-client: {count} cases");
    for case in 1..=count {
        let target = format!("/runCase?case={case}&agent={agent}");
        let (stream, conn, leftover) = autobahn::connect(endpoint, &target)?;
        autobahn::drive(stream, conn, &leftover, |conn, message| {
            let _ = conn.send(&message);
        })?;
        if case % 50 == 0 {
            eprintln!("autobahn-client: {case}/{count}");
        }
    }
    let (stream, conn, leftover) =
        autobahn::connect(endpoint, &format!("/updateReports?agent={agent}"))?;
    autobahn::drive(stream, conn, &leftover, |_, _| {})
}
