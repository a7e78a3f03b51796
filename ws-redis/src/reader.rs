//! Reads of rooms' histories from Redis, for the subscriber thread: one script call per read
//! ([`READ_SCRIPT`]), giving the room's epoch, its last offset and the entries asked for
//! together, so what a read answers is one moment of the room. Then the answer
//! (`page`): what was missed, with the room's position, or why it cannot be given.

use crate::envelope::Envelope;
use crate::Shared;
use redis::{ConnectionLike, RedisResult, Script, Value};
use ws_mio_server::history::{Epoch, Outcome, Page, Position, Want};
use ws_proto::Message;

/// One read, atomic in Redis. `KEYS` as for the publish script (the meta hash, the stream);
/// `ARGV[1]` is `since`, `last` or `position`; `ARGV[2]` the offset after which (`since`) or
/// how many (`last`); `ARGV[3]` the most entries to return; `ARGV[4]` the meta hash's lifetime
/// in seconds (0: for ever).
///
/// A join (`since`, `position`) of a room without a meta hash starts its epoch at offset 0,
/// as a publish would, so the first joiner learns the position it will come back with. Returns
/// `{epoch, offset, entries}`, or an empty list for a `last` of a room with no history.
pub const READ_SCRIPT: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  if ARGV[1] == 'last' then return {} end
  local t = redis.call('TIME')
  epoch = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
end
local offset = tonumber(redis.call('HGET', KEYS[1], 'offset') or '0')
local entries = {}
if ARGV[1] == 'since' then
  local from = string.format('%d', tonumber(ARGV[2]) + 1) .. '-0'
  entries = redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', ARGV[3])
elseif ARGV[1] == 'last' then
  entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[2])
end
return {epoch, offset, entries}
";

/// The largest offset a read passes to the script: Lua's numbers are doubles.
const MAX_OFFSET: u64 = 1 << 52;

/// What Redis holds of a room at one moment: its position, and entries (offset, payload),
/// oldest first.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    pub(crate) position: Option<Position>,
    pub(crate) entries: Vec<(u64, Message)>,
}

/// Reads `want` of `room`.
pub(crate) fn read(
    con: &mut dyn ConnectionLike,
    script: &Script,
    shared: &Shared,
    room: &str,
    want: &Want,
) -> RedisResult<Stored> {
    let limit = shared.config.stream_length.max(1);
    let (mode, n) = match want {
        Want::Since(p) => ("since", p.offset.min(MAX_OFFSET)),
        Want::Last(n) => ("last", (*n as u64).min(limit)),
        Want::Position => ("position", 0),
    };
    let value: Value = script
        .key(shared.names.meta_key(room))
        .key(shared.names.log_key(room))
        .arg(mode)
        .arg(n)
        .arg(limit)
        .arg(shared.config.meta_ttl.as_secs())
        .invoke(con)?;
    let mut stored = parse(&value, shared.config.max_message_size).ok_or_else(|| {
        redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "the read script's answer is not {epoch, offset, entries}",
        ))
    })?;
    if mode == "last" {
        stored.entries.reverse();
    }
    Ok(stored)
}

/// `{epoch, offset, entries}` (or `{}`) as [`Stored`]; `None` for anything else.
fn parse(value: &Value, max_message: usize) -> Option<Stored> {
    let Value::Array(items) = value else {
        return None;
    };
    let [epoch, offset, entries] = items.as_slice() else {
        return items.is_empty().then(Stored::default);
    };
    let epoch = match epoch {
        Value::BulkString(b) => Epoch::parse(std::str::from_utf8(b).ok()?)?,
        _ => return None,
    };
    let offset = match offset {
        Value::Int(n) => u64::try_from(*n).ok()?,
        _ => return None,
    };
    let Value::Array(entries) = entries else {
        return None;
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        // [id, [field, value]]: the id is `OFFSET-0`, the value the envelope.
        let Value::Array(parts) = entry else {
            return None;
        };
        let [Value::BulkString(id), Value::Array(fields)] = parts.as_slice() else {
            return None;
        };
        let id = std::str::from_utf8(id).ok()?;
        let entry_offset: u64 = id.strip_suffix("-0")?.parse().ok()?;
        let [_, Value::BulkString(envelope)] = fields.as_slice() else {
            return None;
        };
        let envelope = Envelope::decode(envelope, max_message).ok()?;
        out.push((entry_offset, envelope.message));
    }
    Some(Stored {
        position: Some(Position { epoch, offset }),
        entries: out,
    })
}

/// The answer to `want` from what Redis holds, the messages rendered by `render`.
pub(crate) fn page(
    want: &Want,
    stored: Stored,
    render: impl Fn(&Position, &Message) -> Message,
) -> Page {
    let Some(position) = stored.position else {
        return Page {
            outcome: Outcome::Lost,
            position: None,
            messages: Vec::new(),
        };
    };
    let at = |offset| Position {
        epoch: position.epoch.clone(),
        offset,
    };
    let rendered = |entries: Vec<(u64, Message)>| {
        let messages = entries.iter().map(|(o, m)| render(&at(*o), m));
        messages.collect::<Vec<_>>()
    };
    let outcome = match want {
        Want::Position | Want::Last(_) => Outcome::Recovered,
        Want::Since(since) => {
            let missed = position.offset.checked_sub(since.offset);
            // Every offset from since + 1 to the last, none trimmed away.
            let whole = |n: u64| {
                stored.entries.len() as u64 == n
                    && stored
                        .entries
                        .iter()
                        .zip(since.offset + 1..)
                        .all(|((o, _), expected)| *o == expected)
            };
            match missed {
                Some(n) if since.epoch == position.epoch && whole(n) => Outcome::Recovered,
                _ => Outcome::Lost,
            }
        }
    };
    let messages = match (outcome, want) {
        (Outcome::Recovered, Want::Since(_) | Want::Last(_)) => rendered(stored.entries),
        _ => Vec::new(),
    };
    Page {
        outcome,
        position: Some(position),
        messages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(epoch: &str, last: u64, offsets: &[u64]) -> Stored {
        let entries = offsets
            .iter()
            .map(|&o| (o, Message::Text(o.to_string().into())))
            .collect();
        Stored {
            position: Some(Position {
                epoch: Epoch::parse(epoch).unwrap(),
                offset: last,
            }),
            entries,
        }
    }

    fn since(epoch: &str, offset: u64) -> Want {
        Want::Since(Position {
            epoch: Epoch::parse(epoch).unwrap(),
            offset,
        })
    }

    fn same(_: &Position, m: &Message) -> Message {
        m.clone()
    }

    #[test]
    fn every_offset_after_the_clients_is_recovered_and_a_trimmed_or_other_epoch_is_lost() {
        let page = page(&since("e", 2), stored("e", 5, &[3, 4, 5]), same);
        assert_eq!((page.outcome, page.messages.len()), (Outcome::Recovered, 3));
        let up_to_date = super::page(&since("e", 5), stored("e", 5, &[]), same);
        assert_eq!(up_to_date.outcome, Outcome::Recovered);
        let trimmed = super::page(&since("e", 1), stored("e", 5, &[3, 4, 5]), same);
        assert_eq!(
            (trimmed.outcome, trimmed.messages.len()),
            (Outcome::Lost, 0)
        );
        let other = super::page(&since("f", 2), stored("e", 5, &[3, 4, 5]), same);
        assert_eq!(other.outcome, Outcome::Lost);
        let ahead = super::page(&since("e", 9), stored("e", 5, &[]), same);
        assert_eq!(ahead.outcome, Outcome::Lost);
        let gone = super::page(&Want::Last(5), Stored::default(), same);
        assert_eq!((gone.outcome, gone.position), (Outcome::Lost, None));
    }

    #[test]
    fn an_answer_that_is_not_the_scripts_is_refused() {
        assert!(parse(&Value::Nil, 10).is_none());
        assert!(parse(&Value::Array(vec![Value::Int(1)]), 10).is_none());
        assert!(parse(&Value::Array(vec![]), 10).is_some());
        let bad_epoch = Value::Array(vec![
            Value::BulkString(b"a b".to_vec()),
            Value::Int(1),
            Value::Array(vec![]),
        ]);
        assert!(parse(&bad_epoch, 10).is_none());
        let bad_id = Value::Array(vec![
            Value::BulkString(b"e".to_vec()),
            Value::Int(1),
            Value::Array(vec![Value::Array(vec![
                Value::BulkString(b"1-1".to_vec()),
                Value::Array(vec![]),
            ])]),
        ]);
        assert!(parse(&bad_id, 10).is_none());
    }
}
