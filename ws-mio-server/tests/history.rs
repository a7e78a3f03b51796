//! Room history through the server: recorded messages numbered in order on every worker, a
//! connection joining with a position sent exactly what it missed and then the live messages,
//! none twice, however the workers' inboxes interleave with the join.

use ws_mio_server::history::{Answer, Epoch, Position};
use ws_mio_server::testing::{ClientId, TestServer};
use ws_mio_server::{Config, Context, Handler, OpenDecision, OpenRequest};
use ws_proto::Message;

/// `pub TEXT` records TEXT in room "r"; `join` joins it fresh, `join EPOCH OFFSET` with a
/// position. Delivered messages read `OFFSET EPOCH TEXT`; an answer reads `answer OUTCOME
/// EPOCH OFFSET MISSED`.
struct Numbered;

impl Handler for Numbered {
    type Conn = ();

    fn on_open(&self, _: &OpenRequest<'_>) -> OpenDecision<()> {
        OpenDecision::accept(())
    }

    fn on_message(&self, ctx: &mut Context<'_>, _: &mut (), message: Message) {
        let text = String::from_utf8_lossy(message.as_bytes()).into_owned();
        let words: Vec<&str> = text.split(' ').collect();
        match words.as_slice() {
            ["pub", text] => ctx.publish_recorded("r", Message::Text(text.to_string().into())),
            ["join"] => {
                ctx.join_with_history("r", None);
            }
            ["join", epoch, offset] => {
                let since = Position {
                    epoch: Epoch::parse(epoch).unwrap(),
                    offset: offset.parse().unwrap(),
                };
                ctx.join_with_history("r", Some(since));
            }
            ["leave"] => {
                ctx.leave("r");
            }
            _ => panic!("unknown request {text}"),
        }
    }

    fn render(&self, _: &str, at: Option<&Position>, payload: &Message) -> Message {
        let at = at.expect("a position: the history has room");
        let text = String::from_utf8_lossy(payload.as_bytes());
        Message::Text(format!("{} {} {text}", at.offset, at.epoch).into())
    }

    fn on_history(&self, ctx: &mut Context<'_>, _: &mut (), answer: &Answer) {
        let page = &answer.page;
        let (epoch, offset) = page
            .position
            .as_ref()
            .map_or(("-".to_string(), 0), |p| (p.epoch.to_string(), p.offset));
        let outcome = format!("{:?}", page.outcome);
        let missed = page.messages.len();
        let text = format!("answer {outcome} {epoch} {offset} {missed}");
        ctx.reply(Message::Text(text.into()));
    }
}

fn texts(server: &mut TestServer<Numbered>, client: ClientId) -> Vec<String> {
    let text = |m: Message| String::from_utf8_lossy(m.as_bytes()).into_owned();
    server.messages(client).into_iter().map(text).collect()
}

fn say(server: &mut TestServer<Numbered>, client: ClientId, text: &str) {
    server.send(client, Message::Text(text.to_string().into()));
}

fn server(workers: usize, history_size: usize) -> TestServer<Numbered> {
    let config = Config {
        workers,
        history_size,
        ..Config::default()
    };
    TestServer::new(config, Numbered)
}

/// The offsets of the room messages among `texts`, in the order they came.
fn offsets(texts: &[String]) -> Vec<u64> {
    let offset = |t: &String| t.split(' ').next()?.parse().ok();
    texts.iter().filter_map(offset).collect()
}

#[test]
fn a_first_join_learns_the_rooms_position_and_messages_are_numbered_from_one() {
    let mut server = server(2, 10);
    let alice = server.connect("/");
    say(&mut server, alice, "join");
    let answer = texts(&mut server, alice);
    assert_eq!(answer.len(), 1);
    assert!(answer[0].starts_with("answer Recovered "), "{answer:?}");
    assert!(answer[0].ends_with(" 0 0"), "no message yet: {answer:?}");
    let epoch = answer[0].split(' ').nth(2).unwrap().to_string();
    say(&mut server, alice, "pub a");
    say(&mut server, alice, "pub b");
    assert_eq!(
        texts(&mut server, alice),
        [format!("1 {epoch} a"), format!("2 {epoch} b")]
    );
}

#[test]
fn a_client_coming_back_gets_exactly_what_it_missed_then_the_live_messages() {
    let mut server = server(2, 100);
    let alice = server.connect("/");
    let bob = server.connect("/");
    say(&mut server, alice, "join");
    say(&mut server, bob, "join");
    say(&mut server, alice, "pub 1");
    let seen = texts(&mut server, bob);
    let last = seen.last().unwrap().clone();
    let epoch = last.split(' ').nth(1).unwrap().to_string();
    // Bob goes; three messages are published while he is away.
    say(&mut server, bob, "leave");
    for i in 2..=4 {
        say(&mut server, alice, &format!("pub {i}"));
    }
    texts(&mut server, bob);
    say(&mut server, bob, &format!("join {epoch} 1"));
    say(&mut server, alice, "pub 5");
    let got = texts(&mut server, bob);
    assert_eq!(got[0], format!("answer Recovered {epoch} 4 3"));
    assert_eq!(offsets(&got[1..]), [2, 3, 4, 5]);
}

/// Every interleaving that matters in one round: publishers on both workers record messages
/// whose delivery waits in the inboxes while the joiner's page is read. The joiner gets each
/// offset once, in order, with no gap.
#[test]
fn a_join_while_messages_wait_in_the_inboxes_gets_each_once_in_order() {
    let mut server = server(2, 1000);
    let pubs: Vec<ClientId> = (0..4).map(|_| server.connect("/")).collect();
    for &p in &pubs {
        say(&mut server, p, "join");
    }
    for &p in &pubs {
        texts(&mut server, p);
    }
    let joiners: Vec<ClientId> = (0..20).map(|_| server.connect("/")).collect();
    for (round, &joiner) in joiners.iter().enumerate() {
        // Publishers queue a few messages each, a new joiner queues its join, all in one round.
        for (i, &p) in pubs.iter().enumerate() {
            for k in 0..3 {
                let text = format!("pub r{round}p{i}k{k}");
                server.queue(p, Message::Text(text.into()));
            }
        }
        server.queue(joiner, Message::Text("join".into()));
        server.round();
    }
    server.drive();
    let total = 20 * 4 * 3;
    for &p in &pubs {
        let got = offsets(&texts(&mut server, p));
        assert_eq!(
            got,
            (1..=total).collect::<Vec<u64>>(),
            "a publisher sees all, in order"
        );
    }
    for &j in &joiners {
        let got = texts(&mut server, j);
        let answer: Vec<&str> = got[0].split(' ').collect();
        assert_eq!(answer[..2], ["answer", "Recovered"]);
        let start: u64 = answer[3].parse().unwrap();
        let expected: Vec<u64> = (start + 1..=total).collect();
        assert_eq!(
            offsets(&got[1..]),
            expected,
            "each once, in order, none missed"
        );
    }
}

#[test]
fn a_position_older_than_the_history_or_of_another_epoch_is_lost_and_told_where_to_start() {
    let mut server = server(1, 2);
    let alice = server.connect("/");
    say(&mut server, alice, "join");
    for i in 1..=5 {
        say(&mut server, alice, &format!("pub {i}"));
    }
    let epoch = texts(&mut server, alice)[1]
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string();
    let bob = server.connect("/");
    say(&mut server, bob, &format!("join {epoch} 1"));
    assert_eq!(
        texts(&mut server, bob),
        [format!("answer Lost {epoch} 5 0")]
    );
    let carol = server.connect("/");
    say(&mut server, carol, "join gone 1");
    assert_eq!(
        texts(&mut server, carol),
        [format!("answer Lost {epoch} 5 0")]
    );
    // A position within what is kept recovers.
    let dave = server.connect("/");
    say(&mut server, dave, &format!("join {epoch} 3"));
    let got = texts(&mut server, dave);
    assert_eq!(got[0], format!("answer Recovered {epoch} 5 2"));
    assert_eq!(offsets(&got[1..]), [4, 5]);
}
