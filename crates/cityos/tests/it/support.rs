//! What the binary's tests share: running `cityos`, the repository root, a fresh
//! temporary directory, the output as text, a minimal HTTP exchange (and a citizen's
//! report sent with it), a free local address, a server started and stopped, a fresh
//! PostgreSQL schema.

use std::io::{BufRead, BufReader, Lines};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Output, Stdio};

pub fn cityos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cityos"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run cityos")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cityos-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A minimal HTTP/1.1 exchange over a real socket.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A citizen reports night-time construction noise (no sign-in).
pub fn report_noise(addr: &str) -> (u16, String) {
    http(
        addr,
        "POST",
        "/api/v1/reports",
        None,
        Some(r#"{"category":"noise","lon":121.4454,"lat":31.2067,"text":"夜间施工噪声"}"#),
    )
}

/// A local address no one listens on (yet).
pub fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// Starts `cityos` with `args` (its output piped, its errors to `stderr`) and reads its
/// output up to the "Ctrl-C" line that says it serves: the child, what it printed until
/// then, and the rest of its output.
pub fn spawn_serving(
    args: &[&str],
    stderr: Stdio,
) -> (Child, String, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cityos"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    (child, printed, lines)
}

/// Sends SIGINT (a graceful stop) to a child.
pub fn interrupt(child: &Child) {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
}

/// A fresh PostgreSQL schema for one test.
pub struct Pg {
    /// The database server's URL.
    pub url: String,
    pub schema: String,
    /// The URL that selects the schema.
    pub schema_url: String,
}

/// A fresh (emptied) schema `{prefix}_{pid}`, or `None` (skip) when
/// `CITYOS_TEST_POSTGRES_URL` is not set — unless `CITYOS_REQUIRE_SERVICES=1`, which makes
/// a missing database a failure.
pub fn postgres(prefix: &str) -> Option<Pg> {
    let url = match std::env::var("CITYOS_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                std::env::var("CITYOS_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "CITYOS_TEST_POSTGRES_URL is required"
            );
            eprintln!("skipping: CITYOS_TEST_POSTGRES_URL is not set");
            return None;
        }
    };
    let schema = format!("{prefix}_{}", std::process::id());
    cityos_engine::PostgresStore::drop_schema(&url, &schema).unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let schema_url = format!("{url}{sep}schema={schema}");
    Some(Pg {
        url,
        schema,
        schema_url,
    })
}

impl Pg {
    /// Drops the schema.
    pub fn drop_schema(&self) {
        cityos_engine::PostgresStore::drop_schema(&self.url, &self.schema).unwrap();
    }
}

/// One test at a time that runs several `cityos serve` processes under load (the crash
/// rounds, the several-nodes tests): on two cores two of them side by side make each
/// other's timing limits (restart within 2 s, takeover within 10 s) a measure of the
/// machine, not of cityos.
pub fn nodes_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}
