//! A redis-server of a test's own: on a loopback port the system had free, persisting
//! nothing (or, [`RedisServer::start_durable`], an append-only file in a directory of its
//! own), killed when dropped (so a failing test leaves no process behind). Or a Redis Cluster
//! of three masters of the same kind ([`RedisCluster`]). Spoken to in plain RESP over a
//! socket, so any crate's tests can use it; a test that runs on either takes a [`TestRedis`].

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a wait for Redis may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

pub struct RedisServer {
    child: Child,
    pub port: u16,
    /// Where its append-only file is kept, when it keeps one.
    dir: Option<PathBuf>,
    /// A cluster node's bus port, its nodes file and its node timeout in milliseconds.
    cluster: Option<(u16, PathBuf, u64)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_on(free_port())
    }

    pub fn start_on(port: u16) -> RedisServer {
        RedisServer::launch(port, None)
    }

    /// A server that keeps its data in an append-only file (fsync every write), so a restart
    /// ([`Self::restart`]) finds it again.
    pub fn start_durable() -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("ws-redis-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        RedisServer::launch(port, Some(dir))
    }

    fn launch(port: u16, dir: Option<PathBuf>) -> RedisServer {
        RedisServer::launch_with(port, dir, None)
    }

    fn launch_with(
        port: u16,
        dir: Option<PathBuf>,
        cluster: Option<(u16, PathBuf, u64)>,
    ) -> RedisServer {
        let child = spawn(port, dir.as_ref(), cluster.as_ref());
        let server = RedisServer {
            child,
            port,
            dir,
            cluster,
        };
        server.wait_for_ping();
        server
    }

    fn wait_for_ping(&self) {
        let deadline = Instant::now() + WAIT;
        while self.command(&["PING"]).as_deref() != Some("+PONG\r\n") {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command's reply as it came (one read's worth, enough for short replies); `None`
    /// if Redis cannot be reached.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut reply = vec![0; 4096];
        let n = stream.read(&mut reply).ok()?;
        Some(String::from_utf8_lossy(&reply[..n]).into_owned())
    }

    /// How many connections are subscribed to `channel` (`PUBSUB NUMSUB`).
    pub fn subscribers(&self, channel: &str) -> u64 {
        count_of(&self.command(&["PUBSUB", "NUMSUB", channel]).unwrap())
    }

    /// Kills it (SIGKILL: what was not written to its file is lost).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills it and starts it again on the same port, with the same file if it keeps one.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Starts it again after [`Self::stop`], on the same port, with the same file if any.
    pub fn start_again(&mut self) {
        self.child = spawn(self.port, self.dir.as_ref(), self.cluster.as_ref());
        self.wait_for_ping();
    }
}

/// redis-server on `port`, keeping an append-only file in `dir` if given; a cluster node with
/// its bus port, nodes file and node timeout if given.
fn spawn(port: u16, dir: Option<&PathBuf>, cluster: Option<&(u16, PathBuf, u64)>) -> Child {
    let mut command = Command::new("redis-server");
    command.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]);
    command.args(["--save", "", "--daemonize", "no"]);
    if let Some((bus, nodes_file, node_timeout)) = cluster {
        command.args([
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            &bus.to_string(),
        ]);
        command.args(["--cluster-node-timeout", &node_timeout.to_string()]);
        // A replica's first sync at once, not after the default 5 s wait for more replicas;
        // what a replica receives kept beside the nodes file, not in the working directory.
        command.args(["--repl-diskless-sync-delay", "0"]);
        command.arg("--dir").arg(nodes_file.parent().unwrap());
        command.args(["--dbfilename", &format!("dump-{port}.rdb")]);
        command.arg("--cluster-config-file").arg(nodes_file);
    }
    match dir {
        Some(dir) => command
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir),
        None => command.args(["--appendonly", "no"]),
    };
    command
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on the PATH (test.sh installs it: apt-get install redis-server)")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// What the tests that run on a single Redis and on a cluster alike ask of it.
pub trait TestRedis {
    /// The `--redis` value.
    fn url(&self) -> String;
    /// One command's reply as it came, from the node that owns its key (the first for none).
    fn command(&self, args: &[&str]) -> Option<String>;
    /// How many connections are subscribed to a room's `channel`.
    fn subscribers(&self, channel: &str) -> u64;
    /// The command that publishes to a room's channel.
    fn publish_command(&self) -> &'static str;
    /// How many masters share the slots.
    fn masters(&self) -> usize;
    /// The masters (by index) where some connection is subscribed to `channel`.
    fn subscribed_on(&self, channel: &str) -> Vec<usize>;
}

impl TestRedis for RedisServer {
    fn url(&self) -> String {
        RedisServer::url(self)
    }
    fn command(&self, args: &[&str]) -> Option<String> {
        RedisServer::command(self, args)
    }
    fn subscribers(&self, channel: &str) -> u64 {
        RedisServer::subscribers(self, channel)
    }
    fn publish_command(&self) -> &'static str {
        "PUBLISH"
    }
    fn masters(&self) -> usize {
        1
    }
    fn subscribed_on(&self, channel: &str) -> Vec<usize> {
        match self.subscribers(channel) {
            0 => vec![],
            _ => vec![0],
        }
    }
}

/// The count in a `*2 $LEN CHANNEL :N` reply.
fn count_of(reply: &str) -> u64 {
    let count = reply.trim_end().rsplit("\r\n").next().unwrap();
    count.strip_prefix(':').unwrap().parse().unwrap()
}

/// How many connections are subscribed to shard channel `channel` on `node` (none on a node
/// that is down).
fn shard_subscribers(node: &RedisServer, channel: &str) -> u64 {
    let reply = node.command(&["PUBSUB", "SHARDNUMSUB", channel]);
    reply.map_or(0, |reply| count_of(&reply))
}

/// A Redis Cluster of three masters on loopback ports the system had free, slots 0-5460,
/// 5461-10922 and 10923-16383 in that order, persisting nothing; killed when dropped. Made with
/// `CLUSTER ADDSLOTSRANGE`, `SET-CONFIG-EPOCH` and `MEET` (what `redis-cli --cluster create`
/// does), each node's bus on a free port of its own. A master reports the cluster ok no sooner
/// than two seconds after it started.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    dir: PathBuf,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        RedisCluster::launch(false)
    }

    /// The same with a fourth node, a replica of the second master, and a node timeout of a
    /// second, so that the replica takes over within a few seconds of its master's death.
    pub fn start_with_replica() -> RedisCluster {
        RedisCluster::launch(true)
    }

    fn launch(replica: bool) -> RedisCluster {
        // Redis's default node timeout (15 s) when nothing is to fail over: a loaded machine
        // then never takes a slow node for a failed one.
        let node_timeout = if replica { 1000 } else { 15000 };
        let first = free_port();
        let dir =
            std::env::temp_dir().join(format!("ws-redis-cluster-{}-{first}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
        let mut nodes = Vec::new();
        for i in 0..ranges.len() + usize::from(replica) {
            let port = if i == 0 { first } else { free_port() };
            let nodes_file = dir.join(format!("nodes-{port}.conf"));
            let cluster = Some((free_port(), nodes_file, node_timeout));
            nodes.push(RedisServer::launch_with(port, None, cluster));
        }
        for (i, (node, (low, high))) in nodes.iter().zip(ranges).enumerate() {
            let (low, high, epoch) = (low.to_string(), high.to_string(), (i + 1).to_string());
            let reply = node
                .command(&["CLUSTER", "ADDSLOTSRANGE", &low, &high])
                .unwrap();
            assert_eq!(reply, "+OK\r\n");
            let reply = node
                .command(&["CLUSTER", "SET-CONFIG-EPOCH", &epoch])
                .unwrap();
            assert_eq!(reply, "+OK\r\n");
        }
        for other in &nodes[1..] {
            let port = other.port.to_string();
            let bus = other.cluster.as_ref().unwrap().0.to_string();
            let meet = ["CLUSTER", "MEET", "127.0.0.1", &port, &bus];
            let reply = nodes[0].command(&meet).unwrap();
            assert_eq!(reply, "+OK\r\n");
        }
        let cluster = RedisCluster { nodes, dir };
        let known = format!("cluster_known_nodes:{}", cluster.nodes.len());
        let up = |node: &RedisServer| {
            let info = node.command(&["CLUSTER", "INFO"]).unwrap_or_default();
            info.contains("cluster_state:ok") && info.contains(&known)
        };
        let deadline = Instant::now() + WAIT;
        while !cluster.nodes.iter().all(up) {
            assert!(Instant::now() < deadline, "the cluster did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        if replica {
            let master = cluster.id(1);
            let reply = cluster.nodes[3].command(&["CLUSTER", "REPLICATE", &master]);
            assert_eq!(reply.as_deref(), Some("+OK\r\n"));
            while !cluster.nodes[3]
                .command(&["INFO", "replication"])
                .unwrap_or_default()
                .contains("master_link_status:up")
            {
                assert!(Instant::now() < deadline, "the replica did not catch up");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        cluster
    }

    /// The `--redis` value: every node, as seeds.
    pub fn url(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(RedisServer::url).collect();
        urls.join(",")
    }

    /// Node `index`'s id in the cluster.
    fn id(&self, index: usize) -> String {
        let reply = self.nodes[index].command(&["CLUSTER", "MYID"]).unwrap();
        // `$40\r\nID\r\n`
        reply.split("\r\n").nth(1).unwrap().to_string()
    }

    /// Moves `slot` from master `from` to master `to`, its keys too, as a resharding does
    /// (`SETSLOT IMPORTING`/`MIGRATING`, `MIGRATE`, `SETSLOT NODE` on every master).
    pub fn move_slot(&self, slot: u16, from: usize, to: usize) {
        let (slot, from_id, to_id) = (slot.to_string(), self.id(from), self.id(to));
        let ok = |node: usize, args: &[&str]| {
            let reply = self.nodes[node].command(args).unwrap();
            assert_eq!(reply, "+OK\r\n", "{args:?}");
        };
        ok(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]);
        ok(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]);
        let keys = self.nodes[from]
            .command(&["CLUSTER", "GETKEYSINSLOT", &slot, "1000"])
            .unwrap();
        // `*N\r\n` then `$LEN\r\nKEY\r\n` for each.
        let keys: Vec<&str> = keys
            .split("\r\n")
            .skip(2)
            .step_by(2)
            .filter(|k| !k.is_empty())
            .collect();
        let port = self.nodes[to].port.to_string();
        for key in keys {
            ok(from, &["MIGRATE", "127.0.0.1", &port, key, "0", "5000"]);
        }
        for node in 0..self.nodes.len() {
            ok(node, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
        }
    }
}

impl TestRedis for RedisCluster {
    fn url(&self) -> String {
        RedisCluster::url(self)
    }
    fn command(&self, args: &[&str]) -> Option<String> {
        let mut last = None;
        for node in &self.nodes {
            let reply = node.command(args)?;
            if !reply.starts_with("-MOVED") {
                return Some(reply);
            }
            last = Some(reply);
        }
        last
    }
    fn subscribers(&self, channel: &str) -> u64 {
        self.nodes
            .iter()
            .map(|n| shard_subscribers(n, channel))
            .sum()
    }
    fn publish_command(&self) -> &'static str {
        "SPUBLISH"
    }
    fn masters(&self) -> usize {
        self.nodes.len()
    }
    fn subscribed_on(&self, channel: &str) -> Vec<usize> {
        let nodes = self.nodes.iter().enumerate();
        nodes
            .filter(|(_, n)| shard_subscribers(n, channel) > 0)
            .map(|(i, _)| i)
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
