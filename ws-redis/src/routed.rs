//! Commands to a Redis Cluster, each to the master that owns its key's slot: a connection per
//! master, made when first needed, and the slot map ([`crate::topology`]), read again when a
//! node answers `MOVED` (the command then goes to the new owner) or `ASK` (the command goes
//! once, after `ASKING`, to the node named). A pipeline is split into one pipeline per master,
//! all sent before any answer is read, and the answers put back in the pipeline's order.
//!
//! Commands without a key (`SCRIPT LOAD`, `PING`) go to every master, and a script loaded is
//! loaded again on every master connected later, so `EVALSHA` finds it wherever its room is.
//!
//! Nothing is sent twice on a lost connection: the error goes to the caller, as on a single
//! Redis ([`crate::link`]), which decides. Every connection is then dropped, since answers
//! may still be on the way on the others.
//!
//! Ours rather than redis-rs's `ClusterConnection`: the broker needs a slot map and
//! connections per master of its own for sharded pub/sub anyway ([`crate::sharded`]), which
//! the blocking cluster client does not offer, and that client sends a command again after a
//! reconnection, which for a script that numbers a message could number it twice.

use crate::seeds::Seeds;
use crate::topology::{Node, SlotMap};
use redis::{
    Arg, Client, Cmd, Connection, ConnectionLike, ErrorKind, RedisError, RedisResult,
    ServerErrorKind, Value,
};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Redirections followed for one command at most.
const REDIRECTIONS: usize = 5;

/// Commands to a cluster.
pub(crate) struct Routed {
    seeds: Seeds,
    map: SlotMap,
    nodes: HashMap<Node, Connection>,
    connect_timeout: Duration,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// `SCRIPT LOAD` commands sent so far, for masters connected later.
    scripts: Vec<Cmd>,
}

/// Where a command goes.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Key(&'a [u8]),
    Everywhere,
}

/// The key that routes `args` (a command's arguments, its name first).
fn target<'a>(args: &[&'a [u8]]) -> Target<'a> {
    let name = args
        .first()
        .map(|n| n.to_ascii_uppercase())
        .unwrap_or_default();
    match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let keys = args.get(2).and_then(|n| std::str::from_utf8(n).ok());
            match (keys.and_then(|n| n.parse::<u64>().ok()), args.get(3)) {
                (Some(1..), Some(key)) => Target::Key(key),
                _ => Target::Everywhere,
            }
        }
        b"SCRIPT" | b"PING" | b"INFO" | b"CLUSTER" | b"TIME" | b"ECHO" | b"FUNCTION"
        | b"CONFIG" | b"DBSIZE" => Target::Everywhere,
        _ => match args.get(1) {
            Some(key) => Target::Key(key),
            None => Target::Everywhere,
        },
    }
}

fn args_of(cmd: &Cmd) -> Vec<&[u8]> {
    cmd.args_iter()
        .map(|arg| match arg {
            Arg::Simple(bytes) => bytes,
            // A cursor (SCAN's), which the broker never sends.
            _ => b"0",
        })
        .collect()
}

fn is_script_load(args: &[&[u8]]) -> bool {
    matches!(args, [name, sub, ..] if name.eq_ignore_ascii_case(b"SCRIPT") && sub.eq_ignore_ascii_case(b"LOAD"))
}

/// A command as it was packed, for commands that reach [`Routed`] as bytes.
fn unpack(value: Value) -> RedisResult<Cmd> {
    let Value::Array(parts) = value else {
        return Err(invalid("a packed command is not an array"));
    };
    let mut cmd = Cmd::new();
    for part in parts {
        match part {
            Value::BulkString(bytes) => cmd.arg(bytes),
            _ => return Err(invalid("a packed command's argument is not a string")),
        };
    }
    Ok(cmd)
}

fn invalid(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::Client, what))
}

/// Where a `MOVED` or `ASK` answer sends the command, and whether it is an `ASK`.
fn redirection(value: &Value) -> Option<(Node, bool)> {
    let Value::ServerError(error) = value else {
        return None;
    };
    let asking = match error.kind()? {
        ServerErrorKind::Moved => false,
        ServerErrorKind::Ask => true,
        _ => return None,
    };
    let address = error.details()?.split_ascii_whitespace().nth(1)?;
    Some((Node::parse(address)?, asking))
}

impl Routed {
    pub(crate) fn new(seeds: Seeds, map: SlotMap, connect_timeout: Duration) -> Routed {
        Routed {
            seeds,
            map,
            nodes: HashMap::new(),
            connect_timeout,
            read_timeout: None,
            write_timeout: None,
            scripts: Vec::new(),
        }
    }

    pub(crate) fn set_read_timeout(&mut self, timeout: Option<Duration>) -> RedisResult<()> {
        self.read_timeout = timeout;
        for con in self.nodes.values() {
            con.set_read_timeout(timeout)?;
        }
        Ok(())
    }

    pub(crate) fn set_write_timeout(&mut self, timeout: Option<Duration>) -> RedisResult<()> {
        self.write_timeout = timeout;
        for con in self.nodes.values() {
            con.set_write_timeout(timeout)?;
        }
        Ok(())
    }

    /// The connection to `node`, made if need be (with the scripts loaded so far).
    fn connection(&mut self, node: &Node) -> RedisResult<&mut Connection> {
        if !self.nodes.contains_key(node) {
            let info = self.seeds.node(&node.host, node.port);
            let mut con = Client::open(info)?.get_connection_with_timeout(self.connect_timeout)?;
            con.set_read_timeout(self.read_timeout)?;
            con.set_write_timeout(self.write_timeout)?;
            for script in &self.scripts {
                con.req_command(script)?.extract_error()?;
            }
            self.nodes.insert(node.clone(), con);
        }
        Ok(self.nodes.get_mut(node).expect("inserted above"))
    }

    /// Reads the slot map again, from a master connected now or else from a seed; the seeds
    /// learn its masters.
    fn refresh(&mut self) -> RedisResult<()> {
        self.read_map()?;
        let masters = self.map.masters().into_iter().map(|n| (n.host, n.port));
        self.seeds.learn(masters);
        Ok(())
    }

    fn read_map(&mut self) -> RedisResult<()> {
        let mut last_error = None;
        let connected: Vec<Node> = self.nodes.keys().cloned().collect();
        for node in connected {
            let con = self.nodes.get_mut(&node).expect("listed above");
            match SlotMap::read(con, &node.host) {
                Ok(map) => {
                    self.map = map;
                    return Ok(());
                }
                Err(error) => last_error = Some(error),
            }
        }
        for seed in self.seeds.nodes() {
            let read = Client::open(seed.clone())
                .and_then(|c| c.get_connection_with_timeout(self.connect_timeout))
                .and_then(|mut con| {
                    con.set_read_timeout(self.read_timeout)?;
                    let host = match seed.addr() {
                        redis::ConnectionAddr::Tcp(host, _) => host.clone(),
                        _ => String::new(),
                    };
                    SlotMap::read(&mut con, &host)
                });
            match read {
                Ok(map) => {
                    self.map = map;
                    return Ok(());
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| invalid("no node to read the slot map from")))
    }

    fn owner(&self, key: &[u8]) -> RedisResult<Node> {
        self.map
            .owner(key)
            .cloned()
            .ok_or_else(|| invalid("no master of the cluster owns the key's slot"))
    }

    /// Forgets every connection after a failure: answers may be left unread on them.
    fn fail<T>(&mut self, error: RedisError) -> RedisResult<T> {
        self.nodes.clear();
        Err(error)
    }

    /// [`Self::fail`] for a pipeline that other masters may have carried out in part: the
    /// error no longer reads as a dropped connection, so nobody sends the whole pipeline again
    /// (a recorded message would be numbered twice).
    fn fail_partly<T>(&mut self, error: RedisError) -> RedisResult<T> {
        let detail = error.to_string();
        self.fail(RedisError::from((
            ErrorKind::Client,
            "a cluster pipeline failed after other masters took their part",
            detail,
        )))
    }

    /// One command to the owner of its key, following redirections; or to every master.
    fn request(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        let args = args_of(cmd);
        let key = match target(&args) {
            Target::Key(key) => key.to_vec(),
            Target::Everywhere => return self.everywhere(cmd, is_script_load(&args)),
        };
        let mut node = self.owner(&key)?;
        let mut asking = false;
        for _ in 0..REDIRECTIONS {
            let con = match self.connection(&node) {
                Ok(con) => con,
                Err(error) => return self.fail(error),
            };
            if asking {
                if let Err(error) = con.req_command(&redis::cmd("ASKING")) {
                    return self.fail(error);
                }
            }
            let value = match con.req_command(cmd) {
                Ok(value) => value,
                Err(error) => return self.fail(error),
            };
            match redirection(&value) {
                None => return Ok(value),
                Some((to, is_ask)) => {
                    if !is_ask {
                        self.refresh()?;
                    }
                    (node, asking) = (to, is_ask);
                }
            }
        }
        Err(invalid("too many cluster redirections"))
    }

    /// A command without a key, to every master: the first master's answer, or the first
    /// error.
    fn everywhere(&mut self, cmd: &Cmd, remember: bool) -> RedisResult<Value> {
        let mut first = None;
        for node in self.map.masters() {
            let value = match self.connection(&node).and_then(|c| c.req_command(cmd)) {
                Ok(value) => value,
                Err(error) => return self.fail(error),
            };
            if let Value::ServerError(_) = value {
                return Ok(value);
            }
            first.get_or_insert(value);
        }
        if remember {
            self.scripts.push(cmd.clone());
        }
        first.ok_or_else(|| invalid("the cluster has no master"))
    }

    /// A pipeline: one per master, all sent, then all answers read; a command redirected is
    /// sent again alone. Every master is connected before anything is sent, so a master out of
    /// reach fails the pipeline as a whole; a failure once some master may have carried out its
    /// part is [`Self::fail_partly`].
    fn pipeline(&mut self, cmds: &[Cmd]) -> RedisResult<Vec<Value>> {
        let masters = self.map.masters();
        let mut groups: BTreeMap<Node, Vec<usize>> = BTreeMap::new();
        for (i, cmd) in cmds.iter().enumerate() {
            let node = match target(&args_of(cmd)) {
                Target::Key(key) => self.owner(key)?,
                Target::Everywhere => masters
                    .first()
                    .cloned()
                    .ok_or_else(|| invalid("no master"))?,
            };
            groups.entry(node).or_default().push(i);
        }
        for node in groups.keys() {
            if let Err(error) = self.connection(node) {
                return self.fail(error);
            }
        }
        let several = groups.len() > 1;
        for (n, (node, indexes)) in groups.iter().enumerate() {
            let mut packed = Vec::new();
            for &i in indexes {
                cmds[i].write_packed_command(&mut packed);
            }
            let sent = self
                .connection(node)
                .and_then(|con| con.send_packed_command(&packed));
            match sent {
                Ok(()) => {}
                Err(error) if n == 0 => return self.fail(error),
                Err(error) => return self.fail_partly(error),
            }
        }
        let mut answers = vec![Value::Nil; cmds.len()];
        let mut again = Vec::new();
        for (node, indexes) in &groups {
            for &i in indexes {
                let answer = match self.nodes.get_mut(node) {
                    Some(con) => con.recv_response(),
                    None => Err(invalid("a master's connection went away")),
                };
                match answer {
                    Ok(value) if redirection(&value).is_some() => again.push(i),
                    Ok(value) => answers[i] = value,
                    Err(error) if several => return self.fail_partly(error),
                    Err(error) => return self.fail(error),
                }
            }
        }
        // A redirected command was not carried out: send it again, in the pipeline's order.
        again.sort_unstable();
        for i in again {
            answers[i] = match self.request(&cmds[i]) {
                Ok(value) => value,
                Err(error) => return self.fail_partly(error),
            };
        }
        Ok(answers)
    }
}

impl ConnectionLike for Routed {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        let cmd = unpack(redis::parse_redis_value(cmd)?)?;
        self.request(&cmd)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        if offset != 0 {
            return Err(invalid("transactions are not routed across a cluster"));
        }
        let mut parser = redis::Parser::new();
        let mut rest = cmd;
        let mut cmds = Vec::with_capacity(count);
        for _ in 0..count {
            cmds.push(unpack(parser.parse_value(&mut rest)?)?);
        }
        self.pipeline(&cmds)
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        self.request(cmd)
    }

    fn get_db(&self) -> i64 {
        0
    }

    fn check_connection(&mut self) -> bool {
        self.request(&redis::cmd("PING")).is_ok()
    }

    fn is_open(&self) -> bool {
        self.nodes.values().all(Connection::is_open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_goes_by_its_key_a_script_by_its_first_key() {
        let key = |cmd: &Cmd| match target(&args_of(cmd)) {
            Target::Key(key) => Some(key.to_vec()),
            Target::Everywhere => None,
        };
        assert_eq!(
            key(redis::cmd("HKEYS").arg("ws:{r}:who")).unwrap(),
            b"ws:{r}:who"
        );
        assert_eq!(
            key(redis::cmd("SPUBLISH").arg("ws:{r}:msg").arg("x")).unwrap(),
            b"ws:{r}:msg"
        );
        let eval = redis::cmd("evalsha")
            .arg("abc")
            .arg(2)
            .arg("ws:{r}:meta")
            .arg("ws:{r}:log")
            .clone();
        assert_eq!(key(&eval).unwrap(), b"ws:{r}:meta");
        assert_eq!(key(redis::cmd("EVALSHA").arg("abc").arg(0).arg("x")), None);
        assert_eq!(key(redis::cmd("SCRIPT").arg("LOAD").arg("return 1")), None);
        assert!(is_script_load(&args_of(
            redis::cmd("script").arg("load").arg("x")
        )));
        assert_eq!(key(&redis::cmd("PING")), None);
    }

    #[test]
    fn a_packed_pipeline_unpacks_into_its_commands() {
        let mut pipe = redis::pipe();
        pipe.cmd("SADD").arg("k").arg(b"\xff\r\n".as_slice());
        pipe.cmd("HKEYS").arg("ws:{r}:who");
        let packed: Vec<u8> = pipe
            .cmd_iter()
            .flat_map(|c| c.get_packed_command())
            .collect();
        let mut parser = redis::Parser::new();
        let mut rest = packed.as_slice();
        let first = unpack(parser.parse_value(&mut rest).unwrap()).unwrap();
        let second = unpack(parser.parse_value(&mut rest).unwrap()).unwrap();
        assert_eq!(args_of(&first), [&b"SADD"[..], b"k", b"\xff\r\n"]);
        assert_eq!(args_of(&second), [&b"HKEYS"[..], b"ws:{r}:who"]);
    }

    #[test]
    fn a_pipeline_failing_after_some_master_took_its_part_is_not_to_be_sent_again() {
        let seeds = Seeds::parse("redis://127.0.0.1:1").unwrap();
        let mut routed = Routed::new(seeds, SlotMap::default(), Duration::from_secs(1));
        let dropped = RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(dropped.is_connection_dropped());
        let whole = routed.fail::<()>(dropped.clone()).unwrap_err();
        assert!(
            whole.is_connection_dropped(),
            "nothing was carried out: send again"
        );
        let partly = routed.fail_partly::<()>(dropped).unwrap_err();
        assert!(!partly.is_connection_dropped() && !partly.is_connection_refusal());
        assert!(partly.to_string().contains("other masters"), "{partly}");
    }

    #[test]
    fn moved_and_ask_answers_name_the_node_to_go_to() {
        let moved = redis::parse_redis_value(b"-MOVED 3999 127.0.0.1:6381\r\n").unwrap();
        let ask = redis::parse_redis_value(b"-ASK 3999 127.0.0.1:6382\r\n").unwrap();
        let other = redis::parse_redis_value(b"-ERR nope\r\n").unwrap();
        assert_eq!(
            redirection(&moved),
            Some((Node::parse("127.0.0.1:6381").unwrap(), false))
        );
        assert_eq!(
            redirection(&ask),
            Some((Node::parse("127.0.0.1:6382").unwrap(), true))
        );
        assert_eq!(redirection(&other), None);
        assert_eq!(redirection(&Value::Okay), None);
    }
}
