//! A chat in the terminal: `cargo run -p ws-chat --example chat_client -- URL ROOM...`.
//!
//! Joins the rooms and prints what happens in them; each line read from standard input is
//! said in the first room, unless it is a command: `/join ROOM`, `/leave ROOM`, `/to ROOM`
//! (where lines go), `/who`, `/history`, `/dm USER TEXT`. The token of a chat run with
//! `--jwt-secret` goes in `CHAT_TOKEN`; guests pick a name with `?name=` in the URL. A URL
//! that ends at the server's root (`ws://127.0.0.1:9001/`) gets the chat's path, `/ws`.
//! The client reconnects by itself and catches up on what it missed.

use tokio::io::{AsyncBufReadExt, BufReader};
use ws_chat::client::{ChatClient, ChatError, ChatEvent, ChatOptions, ClientEvent, GapReason};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ChatError> {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: chat_client URL [ROOM...]   (e.g. ws://127.0.0.1:9001/ lobby)");
        std::process::exit(2);
    };
    let mut options = ChatOptions::new(&chat_path(&url))?;
    if let Ok(token) = std::env::var("CHAT_TOKEN") {
        options = options.token(&token);
    }
    let mut client = ChatClient::connect(options);
    let mut room: Option<String> = None;
    for name in args {
        client.join(&name).await?;
        room.get_or_insert(name);
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    if let Err(e) = command(&client, &mut room, line.trim()).await {
                        eprintln!("! {e}");
                    }
                }
                // End of input: leave cleanly.
                _ => break,
            },
            event = client.recv() => match event {
                Some(event) => show(event),
                None => break,
            },
        }
    }
    client.close().await;
    Ok(())
}

/// The URL with `/ws` for a path of `/` (`ws://host:port/` or `ws://host:port/?name=ann`).
fn chat_path(url: &str) -> String {
    let host = url.find("://").map_or(0, |i| i + 3);
    match url[host..].find('/').map(|i| host + i + 1) {
        Some(after) if url[after..].is_empty() || url[after..].starts_with('?') => {
            format!("{}ws{}", &url[..after], &url[after..])
        }
        _ => url.to_string(),
    }
}

/// One line of input.
async fn command(
    client: &ChatClient,
    room: &mut Option<String>,
    line: &str,
) -> Result<(), ChatError> {
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let current = room.clone().ok_or(ChatError::NotJoined);
    match verb {
        "" => Ok(()),
        "/join" => {
            client.join(rest).await?;
            *room = Some(rest.to_string());
            Ok(())
        }
        "/leave" => {
            if room.as_deref() == Some(rest) {
                *room = None;
            }
            client.leave(rest).await
        }
        "/to" => {
            *room = Some(rest.to_string());
            Ok(())
        }
        "/who" => client.who(&current?).await,
        "/history" => client.history(&current?, 20).await,
        "/dm" => {
            let (to, text) = rest.split_once(' ').unwrap_or((rest, ""));
            client.direct(to, text).await.map(drop)
        }
        _ => client.say(&current?, line).await.map(drop),
    }
}

fn show(event: ChatEvent) {
    match event {
        ChatEvent::Message(m) => println!("[{}] {}: {}", m.room, m.from, m.text),
        ChatEvent::Direct(d) => println!("(from {}) {}", d.from, d.text),
        ChatEvent::Welcome { user, .. } => println!("* connected as {user}"),
        ChatEvent::Joined { room, .. } => println!("* in {room}"),
        ChatEvent::Recovered { room, missed } => println!("* back in {room}, {missed} missed"),
        ChatEvent::Gap(gap) => {
            let why = match gap.reason {
                GapReason::Lost | GapReason::NewEpoch => "the server no longer has them",
                GapReason::Unavailable => "the server cannot read its history now",
                GapReason::Skipped => "some were skipped",
            };
            println!("* [{}] some messages are missing: {why}", gap.room);
        }
        ChatEvent::Presence {
            room, user, joined, ..
        } => {
            println!(
                "* [{room}] {user} {}",
                if joined { "joined" } else { "left" }
            )
        }
        ChatEvent::Members { room, users } => println!("* [{room}] {}", users.join(", ")),
        ChatEvent::History { room, messages } => {
            for m in messages {
                println!("[{room}] (earlier) {}: {}", m.from, m.text)
            }
        }
        ChatEvent::Error { message, .. } => println!("! {message}"),
        ChatEvent::Connection(ClientEvent::Disconnected { .. }) => println!("* connection lost"),
        ChatEvent::Connection(ClientEvent::Reconnecting { delay }) => {
            println!("* reconnecting in {delay:.1?}")
        }
        ChatEvent::Connection(ClientEvent::ConnectFailed { error, .. }) => {
            println!("* could not connect: {error}")
        }
        _ => {}
    }
}
