//! Process figures from /proc: resident memory and CPU time, for the server under test and for
//! the load generator itself (a load generator near 100% of its core measures itself, not the
//! server).

use std::time::Duration;

/// Linux reports utime and stime in USER_HZ ticks, 100 per second on every mainstream
/// architecture.
const TICKS_PER_SECOND: u64 = 100;

/// `VmRSS` of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// User plus system CPU time of a process (all its threads); `None` for this process.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    cpu_times(pid).map(|t| t.user + t.system)
}

/// A process's CPU time split by where it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// In the program itself.
    pub user: Duration,
    /// In the kernel on the program's behalf: system calls, and the network stack's softirq
    /// work done in the program's context (on loopback, sending a segment runs the receiving
    /// side's TCP processing too).
    pub system: Duration,
}

/// User and system CPU time of a process (all its threads, in clock ticks of 10 ms);
/// `None` for this process.
pub fn cpu_times(pid: Option<u32>) -> Option<CpuTimes> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')': state is field 3; utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = |t: u64| Duration::from_millis(t * 1000 / TICKS_PER_SECOND);
    Some(CpuTimes {
        user: ticks(utime),
        system: ticks(stime),
    })
}

/// The kernel's share of a process's CPU time between two readings; `None` when no time was
/// counted.
pub fn kernel_share(before: Option<CpuTimes>, after: Option<CpuTimes>) -> Option<f64> {
    let (before, after) = (before?, after?);
    let user = after.user.saturating_sub(before.user).as_secs_f64();
    let system = after.system.saturating_sub(before.system).as_secs_f64();
    (user + system > 0.0).then(|| system / (user + system))
}

/// TCP segments received and sent by the whole network namespace (`/proc/net/snmp`): on
/// loopback, every segment of both ends is counted once in each.
pub fn tcp_segments() -> Option<(u64, u64)> {
    parse_tcp_segments(&std::fs::read_to_string("/proc/net/snmp").ok()?)
}

/// `InSegs` and `OutSegs` from the two `Tcp:` lines of `/proc/net/snmp` (names, then values).
fn parse_tcp_segments(snmp: &str) -> Option<(u64, u64)> {
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let field = |name: &str| {
        let at = names.split_whitespace().position(|n| n == name)?;
        values.split_whitespace().nth(at)?.parse().ok()
    };
    Some((field("InSegs")?, field("OutSegs")?))
}

/// Time on a CPU and time spent runnable but waiting for one, summed over a process's threads
/// (`/proc/<pid>/task/*/schedstat`, nanoseconds); `None` for this process. Waiting time shows a
/// process that wanted more CPU than it got: on a shared machine its rate is then capped by
/// the others' load, not by its own work.
pub fn sched_times(pid: Option<u32>) -> Option<(Duration, Duration)> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}/task"),
        None => "/proc/self/task".to_string(),
    };
    let (mut on_cpu, mut waiting, mut any) = (0u64, 0u64, false);
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue; // the thread just ended
        };
        let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
        if let (Some(Some(run)), Some(Some(wait))) = (fields.next(), fields.next()) {
            on_cpu += run;
            waiting += wait;
            any = true;
        }
    }
    any.then(|| (Duration::from_nanos(on_cpu), Duration::from_nanos(waiting)))
}

/// Per CPU, the share of time it was busy (anything but idle and iowait), between two readings
/// of [`cpu_ticks`].
pub fn cpu_busy(before: &[(u64, u64)], after: &[(u64, u64)]) -> Vec<f64> {
    before
        .iter()
        .zip(after)
        .map(|(&(busy0, total0), &(busy1, total1))| {
            let total = total1.saturating_sub(total0);
            if total == 0 {
                0.0
            } else {
                busy1.saturating_sub(busy0) as f64 / total as f64
            }
        })
        .collect()
}

/// Per CPU, (busy, total) ticks from `/proc/stat`.
pub fn cpu_ticks() -> Vec<(u64, u64)> {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return Vec::new();
    };
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let ticks: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|t| t.parse().ok())
                .collect();
            let total: u64 = ticks.iter().sum();
            let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

/// CPU time between two readings as a fraction of one core over `wall`.
pub fn core_share(
    before: Option<Duration>,
    after: Option<Duration>,
    wall: Duration,
) -> Option<f64> {
    let (before, after) = (before?, after?);
    (wall > Duration::ZERO).then(|| after.saturating_sub(before).as_secs_f64() / wall.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        let start = std::time::Instant::now();
        let before = cpu_time(None).unwrap();
        while start.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(0);
        }
        let after = cpu_time(Some(pid)).unwrap();
        assert!(after >= before);
        let (on_cpu, _) = sched_times(None).unwrap();
        assert!(on_cpu >= Duration::from_millis(10));
        let ticks = cpu_ticks();
        assert!(!ticks.is_empty());
        assert_eq!(cpu_busy(&ticks, &ticks).len(), ticks.len());
    }

    #[test]
    fn user_work_is_counted_as_user_time() {
        let before = cpu_times(None).unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            for i in 0..10_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        let after = cpu_times(None).unwrap();
        assert!(after.user > before.user, "{before:?} -> {after:?}");
        // A loop of arithmetic (and the clock reads of `elapsed`, which stay in user space
        // through the vDSO) runs mostly outside the kernel.
        let share = kernel_share(Some(before), Some(after)).unwrap();
        assert!(share < 0.5, "kernel share {share}");
        assert_eq!(kernel_share(Some(after), Some(after)), None);
    }

    #[test]
    fn tcp_segment_counters_are_read_by_name() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Tcp: RtoAlgorithm RtoMin ActiveOpens InSegs OutSegs RetransSegs\n\
                    Tcp: 1 200 5 1234 5678 9\n\
                    Udp: InDatagrams\nUdp: 3\n";
        assert_eq!(parse_tcp_segments(snmp), Some((1234, 5678)));
        assert_eq!(parse_tcp_segments("Tcp: InSegs\n"), None);
        assert_eq!(parse_tcp_segments("Tcp: InSegs OutSegs\nTcp: 1 x\n"), None);
    }

    #[test]
    fn a_loopback_exchange_is_counted_in_tcp_segments() {
        use std::io::{Read, Write};
        let (in0, out0) = tcp_segments().expect("Linux has /proc/net/snmp");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        server.read_exact(&mut got).unwrap();
        let (in1, out1) = tcp_segments().unwrap();
        // The handshake's three segments and the data segment at least, each sent and received
        // (other tests may add more, never fewer).
        assert!(out1 >= out0 + 4, "{out0} -> {out1}");
        assert!(in1 >= in0 + 4, "{in0} -> {in1}");
    }
}
