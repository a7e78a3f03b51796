use super::*;
use std::cell::Cell;

const HOUR: Duration = Duration::from_secs(3600);
const NOW: Duration = Duration::ZERO;

fn with_limits(size: usize, rooms: usize, idle_expiry: Duration) -> Histories {
    Histories::new(HistoryLimits {
        size,
        rooms,
        idle_expiry,
    })
}

fn text(n: u64) -> Message {
    Message::Text(n.to_string().into())
}

/// Records `n` messages in `room` (text: their offsets); their positions.
fn record(histories: &Histories, room: &str, n: u64, now: Duration) -> Vec<Position> {
    let mut positions = Vec::new();
    for _ in 0..n {
        histories.record(
            (room, None),
            now,
            |_| false,
            |p| {
                let p = p.expect("a position").clone();
                let m = text(p.offset);
                positions.push(p);
                m
            },
        );
    }
    positions
}

fn texts(page: &Page) -> Vec<String> {
    let text = |m: &Message| String::from_utf8_lossy(m.as_bytes()).into_owned();
    page.messages.iter().map(text).collect()
}

fn counted(histories: &Histories) -> usize {
    histories.counted()
}

#[test]
fn offsets_count_from_one_in_one_epoch_per_room() {
    let histories = with_limits(10, 10, HOUR);
    let a = record(&histories, "a", 3, NOW);
    let b = record(&histories, "b", 1, NOW);
    assert_eq!(a.iter().map(|p| p.offset).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(a.iter().all(|p| p.epoch == a[0].epoch));
    assert_eq!(b[0].offset, 1);
    assert_ne!(a[0].epoch, b[0].epoch, "each room its own epoch");
}

#[test]
fn a_client_that_saw_an_offset_gets_exactly_the_messages_after_it() {
    let histories = with_limits(10, 10, HOUR);
    let p = record(&histories, "r", 5, NOW);
    let page = histories.read("r", Want::Since(p[1].clone()), NOW, |_| false);
    assert_eq!(page.outcome, Outcome::Recovered);
    assert_eq!(texts(&page), ["3", "4", "5"]);
    assert_eq!(page.position, Some(p[4].clone()));
    // Up to date: recovered, nothing to send.
    let page = histories.read("r", Want::Since(p[4].clone()), NOW, |_| false);
    assert_eq!((page.outcome, page.messages.len()), (Outcome::Recovered, 0));
}

#[test]
fn history_is_capped_per_room_and_a_position_before_what_is_kept_is_lost() {
    let histories = with_limits(3, 10, HOUR);
    let p = record(&histories, "r", 5, NOW);
    let last = histories.read("r", Want::Last(10), NOW, |_| false);
    assert_eq!(texts(&last), ["3", "4", "5"]);
    // Offset 2 was the last one dropped: a client that saw it misses nothing kept.
    let page = histories.read("r", Want::Since(p[1].clone()), NOW, |_| false);
    assert_eq!(texts(&page), ["3", "4", "5"]);
    let page = histories.read("r", Want::Since(p[0].clone()), NOW, |_| false);
    assert_eq!((page.outcome, page.messages.len()), (Outcome::Lost, 0));
    assert_eq!(page.position, Some(p[4].clone()), "where to start again");
}

#[test]
fn another_epoch_or_an_offset_from_the_future_is_lost() {
    let histories = with_limits(10, 10, HOUR);
    let p = record(&histories, "r", 2, NOW);
    let elsewhere = Position {
        epoch: Epoch::parse("other").unwrap(),
        offset: 1,
    };
    let page = histories.read("r", Want::Since(elsewhere), NOW, |_| false);
    assert_eq!(page.outcome, Outcome::Lost);
    let ahead = Position {
        offset: 9,
        ..p[1].clone()
    };
    let page = histories.read("r", Want::Since(ahead), NOW, |_| false);
    assert_eq!(page.outcome, Outcome::Lost);
}

#[test]
fn a_first_joiner_learns_the_position_of_a_room_with_no_message_yet() {
    let histories = with_limits(10, 10, HOUR);
    let page = histories.read("new", Want::Position, NOW, |_| false);
    let start = page.position.expect("made");
    assert_eq!(start.offset, 0);
    let p = record(&histories, "new", 1, NOW);
    assert_eq!(p[0].epoch, start.epoch, "the numbering it was told of");
    let page = histories.read("new", Want::Since(start), NOW, |_| false);
    assert_eq!(
        (page.outcome, texts(&page)),
        (Outcome::Recovered, vec!["1".into()])
    );
}

#[test]
fn an_expired_history_starts_a_new_epoch() {
    let histories = with_limits(10, 10, HOUR);
    let p = record(&histories, "r", 2, NOW);
    let page = histories.read("r", Want::Since(p[0].clone()), HOUR, |_| true);
    assert_eq!(page.outcome, Outcome::Lost);
    let now = page.position.unwrap();
    assert_ne!(now.epoch, p[0].epoch);
    assert_eq!(now.offset, 0);
}

/// One call looks at a bounded few rooms; enough calls look at them all. One shard, so that
/// which rooms a call looks at is known.
#[test]
fn the_sweep_drops_expired_empty_rooms_a_bounded_few_per_call_and_keeps_the_rest() {
    let limits = HistoryLimits {
        size: 10,
        rooms: 100,
        idle_expiry: HOUR,
    };
    let histories = Histories::with_shards(limits, 1);
    for i in 0..10 {
        record(&histories, &format!("old{i}"), 1, NOW);
    }
    // "old0" still has members: it never expires.
    let is_empty = |room: &str| room != "old0";
    let later = HOUR + Duration::from_secs(1);
    let looked = Cell::new(0);
    let counting = |room: &str| {
        looked.set(looked.get() + 1);
        is_empty(room)
    };
    histories.record(("new", None), later, counting, |_| text(0));
    // The room itself, and the sweep's few (in whichever shard "new" is).
    assert!(
        looked.get() <= SWEEP + 1,
        "one call looks at {} rooms",
        looked.get()
    );
    assert_eq!(counted(&histories), histories.rooms());
    for _ in 0..10 {
        histories.read("new", Want::Position, later, is_empty);
    }
    let left: Vec<String> = (0..10)
        .map(|i| format!("old{i}"))
        .filter(|r| histories.cached(r, &Want::Position).is_some())
        .collect();
    assert_eq!(left, ["old0"]);
    assert_eq!(counted(&histories), histories.rooms());
}

#[test]
fn past_the_cap_on_rooms_a_new_room_gets_no_position_until_another_expires() {
    let histories = with_limits(10, 3, HOUR);
    for room in ["a", "b", "c"] {
        record(&histories, room, 1, NOW);
    }
    let mut got = None;
    histories.record(
        ("d", None),
        NOW,
        |_| true,
        |p| {
            got = Some(p.cloned());
            text(0)
        },
    );
    assert_eq!(got, Some(None), "delivered, without a position");
    assert_eq!(histories.rooms(), 3);
    // Once "b" has expired (found when asked about), "d" may keep history.
    let page = histories.read("b", Want::Position, HOUR, |r| r == "b");
    assert_eq!(page.position.unwrap().offset, 0, "b starts again");
    assert_eq!(histories.rooms(), 3);
    histories.forget("b");
    assert_eq!(record(&histories, "d", 1, HOUR)[0].offset, 1);
    assert_eq!(histories.rooms(), 3);
    assert_eq!(counted(&histories), 3);
}

#[test]
fn zero_idle_expiry_keeps_history() {
    let histories = with_limits(10, 10, Duration::ZERO);
    let p = record(&histories, "r", 1, NOW);
    let page = histories.read("r", Want::Since(p[0].clone()), HOUR * 1000, |_| true);
    assert_eq!(page.outcome, Outcome::Recovered);
}

fn at(epoch: &Epoch, offset: u64) -> Position {
    Position {
        epoch: epoch.clone(),
        offset,
    }
}

#[test]
fn a_cache_kept_from_live_messages_reaches_back_only_to_its_first() {
    let histories = with_limits(10, 10, HOUR);
    let e = Epoch::parse("e1").unwrap();
    for offset in 7..=9 {
        histories.keep("r", &at(&e, offset), text(offset), NOW);
    }
    // Kept already: ignored.
    histories.keep("r", &at(&e, 8), text(99), NOW);
    let page = histories
        .cached("r", &Want::Since(at(&e, 6)))
        .expect("reaches 6");
    assert_eq!(texts(&page), ["7", "8", "9"]);
    assert!(histories.cached("r", &Want::Since(at(&e, 5))).is_none());
    assert!(histories.cached("r", &Want::Last(5)).is_none());
    // A gap: it starts again from the message after it.
    histories.keep("r", &at(&e, 12), text(12), NOW);
    assert!(histories.cached("r", &Want::Since(at(&e, 9))).is_none());
    assert_eq!(
        texts(&histories.cached("r", &Want::Since(at(&e, 11))).unwrap()),
        ["12"]
    );
    // Another epoch: the same.
    let f = Epoch::parse("f1").unwrap();
    histories.keep("r", &at(&f, 1), text(1), NOW);
    assert_eq!(
        texts(&histories.cached("r", &Want::Last(5)).unwrap()),
        ["1"]
    );
}

#[test]
fn a_fill_from_the_store_goes_under_the_live_messages_kept_after_it() {
    let histories = with_limits(10, 10, HOUR);
    let e = Epoch::parse("e1").unwrap();
    histories.keep("r", &at(&e, 6), text(6), NOW);
    histories.keep("r", &at(&e, 7), text(7), NOW);
    // The store's read ended at 6: 2..=6 after base 1.
    let read = (2..=6).map(|o| (o, text(o))).collect();
    histories.fill("r", &e, 1, 6, read, NOW);
    let page = histories.cached("r", &Want::Since(at(&e, 1))).unwrap();
    assert_eq!(texts(&page), ["2", "3", "4", "5", "6", "7"]);
    assert_eq!(page.position, Some(at(&e, 7)));
    assert_eq!(histories.rooms(), 1);
}

#[test]
fn epochs_are_short_safe_text() {
    for _ in 0..100 {
        let e = Epoch::fresh();
        assert_eq!(Epoch::parse(e.as_str()), Some(e));
    }
    assert!(Epoch::parse(&"a".repeat(33)).is_none());
    assert!(Epoch::parse("é").is_none());
}

#[test]
fn a_message_recorded_once_by_key_is_dropped_when_it_comes_again() {
    let histories = with_limits(10, 10, HOUR);
    let mut delivered = 0;
    for key in ["a", "b", "a", "c", "b"] {
        histories.record(
            ("r", Some(key)),
            NOW,
            |_| false,
            |_| {
                delivered += 1;
                text(delivered)
            },
        );
    }
    assert_eq!(delivered, 3);
    // Only the last RECENT_KEYS keys are remembered.
    for n in 0..RECENT_KEYS {
        histories.record(("r", Some(&n.to_string())), NOW, |_| false, |_| text(0));
    }
    let mut again = false;
    histories.record(
        ("r", Some("a")),
        NOW,
        |_| false,
        |_| {
            again = true;
            text(0)
        },
    );
    assert!(again, "forgotten after RECENT_KEYS others");
    let mut later = false;
    histories.record(
        ("r", Some("a")),
        ONCE_WINDOW - Duration::from_secs(1),
        |_| false,
        |_| {
            later = true;
            text(0)
        },
    );
    assert!(!later, "taken within the window");
    histories.record(
        ("r", Some("a")),
        ONCE_WINDOW * 3,
        |_| false,
        |_| {
            later = true;
            text(0)
        },
    );
    assert!(later, "forgotten past the window");
}
