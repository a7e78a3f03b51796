//! The Autobahn testee for ws-tokio's client role: asks wstest's fuzzing server how many cases
//! there are, runs each one echoing every message, then asks for the reports to be written.
//!
//! Usage: `autobahn-tokio-client --url ws://127.0.0.1:9002 --agent NAME`

use futures_util::{SinkExt, StreamExt};
use std::process::ExitCode;
use ws_tokio::{ClientOptions, ClientStream, Config, Error, Message};

fn arg(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

async fn open(url: &str, target: &str) -> Result<ClientStream, Error> {
    let config = Config {
        protocol: autobahn::config(),
        deflate: Some(autobahn::client_deflate()),
        read_buffer_size: 64 << 10,
        ..Config::default()
    };
    ClientOptions::new(&format!("{url}{target}"))?
        .config(config)
        .connect()
        .await
}

async fn run(url: &str, agent: &str) -> Result<(), Error> {
    let mut ws = open(url, "/getCaseCount").await?;
    let mut count = None;
    while let Some(message) = ws.next().await {
        if let Message::Text(text) = message? {
            count = text.as_str().trim().parse::<u32>().ok();
        }
    }
    let count = count.ok_or(Error::Closed)?;
    eprintln!("autobahn-tokio-client: {count} cases");
    for case in 1..=count {
        let mut ws = open(url, &format!("/runCase?case={case}&agent={agent}")).await?;
        // A case ends with the stream: closed, or failed on the fuzzer's purpose.
        while let Some(Ok(message)) = ws.next().await {
            if ws.feed(message).await.is_err() {
                break;
            }
        }
        if case % 50 == 0 {
            eprintln!("autobahn-tokio-client: {case}/{count}");
        }
    }
    let mut ws = open(url, &format!("/updateReports?agent={agent}")).await?;
    while ws.next().await.is_some() {}
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(&args, "--url").unwrap_or_else(|| "ws://127.0.0.1:9002".to_string());
    let agent = arg(&args, "--agent").unwrap_or_else(|| "ws-tokio-client".to_string());
    let url = url.trim_end_matches('/');
    match run(url, &agent).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autobahn-tokio-client: {e}");
            ExitCode::FAILURE
        }
    }
}
