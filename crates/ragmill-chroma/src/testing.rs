//! A real Chroma server for tests, of this crate and of others: [`ChromaProcess`].
//!
//! It uses the standard library only, so shipping it in the library costs no dependency.
//!
//! ```no_run
//! let chroma = ragmill_chroma::testing::ChromaProcess::start();
//! let config = ragmill_chroma::ChromaConfig::new(chroma.url());
//! // … ChromaIndex::connect(config) …
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take to answer its first heartbeat.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `chroma run` child process on a free loopback port with a fresh data directory, killed
/// (and its directory removed) on drop.
///
/// The server runs under a small `sh` watchdog that holds the read end of a pipe whose write
/// end only this process has: when this process ends, however it ends (a panic, a `static`
/// never dropped, SIGKILL), the pipe closes and the watchdog kills the server. So a test can
/// share one server through [`ChromaProcess::shared`] without leaving it running.
///
/// The binary is `$RAGMILL_CHROMA_BIN`, else the workspace's `.venv-chroma/bin/chroma`
/// (`scripts/ensure-chroma.sh` installs it). Its output goes to `chroma.log` in its directory,
/// not to the test's. The constructor and [`restart`](Self::restart) block the calling thread
/// (about 2 s) until the server answers.
#[derive(Debug)]
pub struct ChromaProcess {
    bin: PathBuf,
    port: u16,
    /// Holds `data/` (Chroma's) and `chroma.log`.
    dir: PathBuf,
    child: Option<Child>,
    /// The watchdog's pipe: closing it kills the server.
    lifeline: Option<std::process::ChildStdin>,
    /// Whether the watchdog also removes `dir` (a shared server, never dropped).
    shared: bool,
}

impl ChromaProcess {
    /// Starts a server and waits for its heartbeat. Panics, saying why, when the binary is
    /// missing or the server does not come up within 30 s.
    pub fn start() -> ChromaProcess {
        let bin = binary();
        let dir = fresh_dir();
        let port = free_port();
        let mut process =
            ChromaProcess { bin, port, dir, child: None, lifeline: None, shared: false };
        process.spawn();
        process
    }

    /// One server for the whole test binary, started on first use and killed when the test
    /// process ends. Tests sharing it keep apart by using a database of their own.
    pub fn shared() -> &'static ChromaProcess {
        static SHARED: std::sync::OnceLock<ChromaProcess> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| {
            let mut process = ChromaProcess {
                bin: binary(),
                port: free_port(),
                dir: fresh_dir(),
                child: None,
                lifeline: None,
                shared: true,
            };
            process.spawn();
            process
        })
    }

    /// The server's base URL, `http://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where Chroma keeps its data (survives [`kill`](Self::kill), removed on drop).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Stops the server at once (SIGKILL), keeping its data. Does nothing if it is stopped.
    pub fn kill(&mut self) {
        // Closing the pipe makes the watchdog SIGKILL the server and wait for it.
        drop(self.lifeline.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Stops the server if it runs and starts it again on the same port and data, waiting for
    /// its heartbeat.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("chroma.log"))
            .unwrap_or_else(|e| {
                panic!("cannot open {}: {e}", self.dir.join("chroma.log").display())
            });
        let stderr = log.try_clone().unwrap_or_else(|e| panic!("cannot clone a file handle: {e}"));
        // `sh -c SCRIPT BIN ARGS…`: the server in the background, its stdin closed; a
        // watchdog reads the shell's stdin (our pipe) until it closes, then kills the server.
        // The shell ends with the server, so an early exit shows in `try_wait`.
        // (A background job's stdin is /dev/null in sh, hence the pipe's copy on fd 3.)
        // A shared server's directory goes with it ($REMOVE), since nothing drops it.
        let watchdog = r#"exec 3<&0; "$0" "$@" </dev/null 3<&- & server=$!; (cat <&3 >/dev/null; kill -9 "$server" 2>/dev/null; if [ -n "$REMOVE" ]; then sleep 1; rm -rf "$REMOVE"; fi) & wait "$server""#;
        let remove = if self.shared { self.dir.clone() } else { PathBuf::new() };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(watchdog)
            .arg(&self.bin)
            .arg("run")
            .arg("--path")
            .arg(self.data_dir())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .env("ANONYMIZED_TELEMETRY", "False")
            .env("REMOVE", remove)
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        self.lifeline = child.stdin.take();
        self.child = Some(child);
        self.wait_for_heartbeat();
    }

    fn wait_for_heartbeat(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if heartbeat(self.port) {
                return;
            }
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                panic!("chroma exited ({status}) before answering:\n{}", self.log_tail());
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("chroma did not answer within {START_TIMEOUT:?}:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The end of the server's log, for a panic message.
    fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.dir.join("chroma.log")).unwrap_or_default();
        let start = text.char_indices().rev().nth(3_000).map_or(0, |(i, _)| i);
        text[start..].to_owned()
    }
}

impl Drop for ChromaProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The chroma binary to run; panics with what to do when there is none.
fn binary() -> PathBuf {
    let bin = std::env::var_os("RAGMILL_CHROMA_BIN").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-chroma/bin/chroma")
    });
    if !bin.is_file() {
        panic!(
            "no chroma binary at {}: run scripts/ensure-chroma.sh (or set RAGMILL_CHROMA_BIN)",
            bin.display()
        );
    }
    bin
}

/// A new, empty directory under the system's temporary directory.
fn fresh_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "ragmill-chroma-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let dir = std::env::temp_dir().join(name);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    // Touch the log so that a failed start always has one to show.
    let _ = File::create(dir.join("chroma.log"));
    dir
}

/// A loopback port nobody listens on now (the OS's pick).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

/// Whether `GET /api/v2/heartbeat` on the port answers 200 (plain HTTP/1.0 over a socket).
fn heartbeat(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /api/v2/heartbeat HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    let mut answer = Vec::new();
    if stream.write_all(request.as_bytes()).is_err() || stream.read_to_end(&mut answer).is_err() {
        return false;
    }
    let status_line = answer.split(|&b| b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(status_line).split_whitespace().nth(1) == Some("200")
}
