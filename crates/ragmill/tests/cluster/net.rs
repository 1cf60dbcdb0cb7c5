//! A network lab for cluster tests: each process in its own network namespace (`ip netns`),
//! joined to the others by veth pairs on one bridge, so processes share nothing but the
//! network. Needs root (CI runs as root); without it the test fails and says why.
//!
//! Addresses are `10.<a>.<b>.<host>/24`, with `<a>.<b>` derived from this process's id, on a
//! bridge only this test creates; nothing outside the namespaces is addressed. Everything is
//! removed on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One lab at a time in a test binary: each starts a whole cluster, and two at once would
/// share this machine's two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// Tells labs of one process apart (names and subnets).
static LABS: AtomicU32 = AtomicU32::new(0);

/// One namespace with its address.
pub struct Host {
    /// The namespace's name.
    pub ns: String,
    /// Its IPv4 address on the lab's bridge.
    pub ip: String,
}

impl Host {
    /// `program` to be run inside this host's namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).arg(program);
        cmd
    }
}

/// The bridge and its hosts.
pub struct Lab {
    bridge: String,
    /// The hosts, in the order asked for.
    pub hosts: Vec<Host>,
    _turn: MutexGuard<'static, ()>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!("cluster tests need iproute2's `ip` (apt-get install iproute2): {e}")
    });
    assert!(
        out.status.success(),
        "`ip {}` failed: {} (cluster tests run each process in its own network namespace, \
         which needs root)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl Lab {
    /// A bridge with `n` hosts, reachable from this (the root) namespace at `.1`.
    pub fn new(n: usize) -> Self {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let (pid, no) = (std::process::id(), LABS.fetch_add(1, Ordering::SeqCst) % 2);
        let (a, b) = (100 + pid % 100, ((pid / 100) % 120) * 2 + no);
        let tag = format!("{:x}{no}", pid % 0xffff);
        let bridge = format!("rmb{tag}");
        ip(&["link", "add", &bridge, "type", "bridge"]);
        let lab = Lab { bridge: bridge.clone(), hosts: Vec::new(), _turn: turn };
        ip(&["addr", "add", &format!("10.{a}.{b}.1/24"), "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        let mut lab = lab;
        for i in 0..n {
            let ns = format!("rm{tag}h{i}");
            let veth = format!("rm{tag}v{i}");
            ip(&["netns", "add", &ns]);
            lab.hosts.push(Host { ns: ns.clone(), ip: format!("10.{a}.{b}.{}", 10 + i) });
            ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
            ip(&["link", "set", &veth, "master", &bridge]);
            ip(&["link", "set", &veth, "up"]);
            ip(&["-n", &ns, "addr", "add", &format!("10.{a}.{b}.{}/24", 10 + i), "dev", "eth0"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        // Bridged frames must not go through a host firewall's FORWARD chain.
        let _ = std::fs::write("/proc/sys/net/bridge/bridge-nf-call-iptables", "0");
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &h.ns]).status();
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).status();
    }
}

/// A child process killed (and reaped) on drop.
pub struct Proc(pub Child);

impl Proc {
    /// Spawns `cmd` with stdout piped and stderr inherited.
    pub fn spawn(mut cmd: Command) -> Self {
        Proc(cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawns"))
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
