//! What the server tells its broker, on pretend time: a room's first member on this instance
//! and its last (from whichever worker), each publish once; and what the broker delivers
//! reaches the local members without going back to it.

use std::sync::{Arc, Mutex, OnceLock};
use ws_mio_server::broker::{Broker, Delivery};
use ws_mio_server::testing::{ClientId, TestServer};
use ws_mio_server::{Config, Context, Handler, OpenDecision, OpenRequest};
use ws_proto::{CloseCode, Message};

/// What a broker was told, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Told {
    Subscribe(String),
    Unsubscribe(String),
    Publish(String, Vec<u8>),
}

#[derive(Default)]
struct Recorder {
    told: Mutex<Vec<Told>>,
    delivery: OnceLock<Delivery>,
}

impl Recorder {
    /// What it was told since the last call.
    fn take(&self) -> Vec<Told> {
        std::mem::take(&mut self.told.lock().unwrap())
    }

    fn note(&self, told: Told) {
        self.told.lock().unwrap().push(told);
    }
}

impl Broker for Recorder {
    fn attach(&self, delivery: Delivery) {
        assert!(self.delivery.set(delivery).is_ok(), "attached twice");
    }
    fn subscribe(&self, room: &Arc<str>) {
        self.note(Told::Subscribe(room.to_string()));
    }
    fn unsubscribe(&self, room: &Arc<str>) {
        self.note(Told::Unsubscribe(room.to_string()));
    }
    fn publish(&self, room: &Arc<str>, message: &Message) {
        self.note(Told::Publish(room.to_string(), message.as_bytes().to_vec()));
    }
    fn write_metrics(&self, out: &mut String) {
        let told = self.told.lock().unwrap().len();
        out.push_str(&format!("recorder_told {told}\n"));
    }
}

/// `join ROOM`, `leave ROOM`, `say ROOM TEXT`.
struct Commands;

impl Handler for Commands {
    type Conn = ();
    fn on_open(&self, _: &OpenRequest<'_>) -> OpenDecision<()> {
        OpenDecision::accept(())
    }
    fn on_message(&self, ctx: &mut Context<'_>, _: &mut (), message: Message) {
        let text = String::from_utf8_lossy(message.as_bytes()).into_owned();
        let mut words = text.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("join"), Some(room), None) => drop(ctx.join(room)),
            (Some("leave"), Some(room), None) => drop(ctx.leave(room)),
            (Some("say"), Some(room), Some(said)) => ctx.publish(room, text_message(said)),
            _ => ctx.close(ctx.id(), CloseCode::POLICY_VIOLATION, "unknown command"),
        }
    }
}

fn text_message(s: &str) -> Message {
    Message::Text(s.to_string().into())
}

fn sub(room: &str) -> Told {
    Told::Subscribe(room.into())
}

fn unsub(room: &str) -> Told {
    Told::Unsubscribe(room.into())
}

/// Two workers; clients are spread over them in turn.
fn server() -> (TestServer<Commands>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let config = Config {
        workers: 2,
        ..Config::default()
    };
    let server = TestServer::with_broker(config, Commands, recorder.clone());
    (server, recorder)
}

fn say(server: &mut TestServer<Commands>, client: ClientId, command: &str) {
    server.send(client, text_message(command));
}

#[test]
fn a_room_is_subscribed_at_its_first_member_and_unsubscribed_at_its_last_on_any_worker() {
    let (mut server, broker) = server();
    let a = server.connect("/");
    let b = server.connect("/");
    assert!(
        broker.delivery.get().is_some(),
        "attached before any client"
    );
    say(&mut server, a, "join lobby");
    assert_eq!(broker.take(), [sub("lobby")]);
    // The second member, on the other worker, and a join again: nothing new.
    say(&mut server, b, "join lobby");
    say(&mut server, b, "join lobby");
    assert_eq!(broker.take(), []);
    say(&mut server, a, "leave lobby");
    say(&mut server, a, "leave lobby");
    assert_eq!(broker.take(), [], "b is still in");
    say(&mut server, b, "leave lobby");
    assert_eq!(broker.take(), [unsub("lobby")]);
    // Back again: subscribed again.
    say(&mut server, b, "join lobby");
    assert_eq!(broker.take(), [sub("lobby")]);
    assert_eq!(server.rooms().len(), 1);
}

#[test]
fn a_disconnect_unsubscribes_the_rooms_it_was_last_in() {
    let (mut server, broker) = server();
    let a = server.connect("/");
    let b = server.connect("/");
    say(&mut server, a, "join shared");
    say(&mut server, b, "join shared");
    say(&mut server, b, "join own");
    assert_eq!(broker.take(), [sub("shared"), sub("own")]);
    // A clean close: b was last only in "own".
    server.close(b, CloseCode::NORMAL);
    assert!(server.transport_closed(b));
    assert_eq!(broker.take(), [unsub("own")]);
    // The peer vanishing (end of stream, no close frame): its rooms go too.
    server.shutdown_write(a);
    server.drive();
    assert!(server.server_closed(a));
    assert_eq!(broker.take(), [unsub("shared")]);
    assert!(server.rooms().is_empty());
}

#[test]
fn a_publish_goes_to_the_broker_once_and_a_delivery_from_it_goes_back_to_none() {
    let (mut server, broker) = server();
    let a = server.connect("/");
    let b = server.connect("/");
    let outsider = server.connect("/");
    say(&mut server, a, "join lobby");
    say(&mut server, b, "join lobby");
    broker.take();

    say(&mut server, a, "say lobby hello");
    assert_eq!(
        broker.take(),
        [Told::Publish("lobby".into(), b"hello".to_vec())]
    );
    for member in [a, b] {
        assert_eq!(server.messages(member), [text_message("hello")]);
    }

    // From another instance: both workers' members get it, the broker is told nothing.
    let delivery = broker.delivery.get().unwrap().clone();
    delivery.publish("lobby", &text_message("from elsewhere"));
    delivery.publish("nobody here", &text_message("lost"));
    server.drive();
    for member in [a, b] {
        assert_eq!(server.messages(member), [text_message("from elsewhere")]);
    }
    assert_eq!(server.messages(outsider), []);
    assert_eq!(broker.take(), []);
    assert_eq!(server.snapshot().inbox_drops_total, 0);
}

#[test]
fn the_brokers_metrics_follow_the_servers_on_the_admin_listener() {
    let (mut server, broker) = server();
    let a = server.connect("/");
    say(&mut server, a, "join lobby");
    let admin = server.connect_admin();
    server.send_raw(admin, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let response = String::from_utf8_lossy(server.raw(admin)).into_owned();
    let body = response.split_once("\r\n\r\n").unwrap().1;
    assert!(body.contains("ws_connections_open 1\n"), "{body}");
    assert!(body.ends_with("recorder_told 1\n"), "{body}");
    assert_eq!(broker.take(), [sub("lobby")]);
}
