//! Helpers to run the built `ciclo` binary: [`spawn_server`] starts `ciclo serve` and reads what
//! it prints (the bound address, the owner's login, the write key); [`run_ciclo`] runs a one-shot
//! command. Servers are killed when their [`ServerHandle`] is dropped.
//!
//! The child gets a clean environment as far as ciclo is concerned (no inherited `CICLO_*`
//! variable), so tests behave the same on a developer's machine and in CI.

#![allow(dead_code)] // Each test file uses a different subset.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to print its `listening on` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Settings the child must not inherit from the test's environment.
const CICLO_VARIABLES: &[&str] = &[
    "CICLO_CONFIG",
    "CICLO_LISTEN",
    "CICLO_PUBLIC_URL",
    "CICLO_DATA_DIR",
    "CICLO_DATABASE_URL",
    "CICLO_OWNER_EMAIL",
    "CICLO_OWNER_PASSWORD",
    "CICLO_LOG",
];

/// A `ciclo` command with a clean ciclo environment.
pub fn ciclo_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_ciclo"));
    for name in CICLO_VARIABLES {
        command.env_remove(name);
    }
    command
        .env("CICLO_LOG", "info")
        .args(args)
        .stdin(Stdio::null());
    command
}

/// Runs a one-shot command to completion.
pub fn run_ciclo<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    ciclo_command(args)
        .output()
        .expect("cannot run the ciclo binary")
}

/// Runs a one-shot command and returns its standard output, failing the test unless it succeeds.
pub fn run_ciclo_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let output = run_ciclo(args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "ciclo failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `serve --listen 127.0.0.1:0 --data-dir DIR`: a server on a free port over SQLite in `data_dir`.
pub fn serve_args(data_dir: &Path) -> Vec<String> {
    vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
    ]
}

/// A running `ciclo serve`.
pub struct ServerHandle {
    /// `http://127.0.0.1:PORT`, from the `listening on` line.
    pub url: String,
    /// The first workspace's write key.
    pub write_key: String,
    pub owner_email: String,
    /// Printed on first start only (and only when generated).
    pub owner_password: Option<String>,
    pub child: Child,
    /// Every line printed on standard output so far (it keeps being collected).
    pub stdout: Arc<Mutex<Vec<String>>>,
    /// Everything printed on standard error so far (the log).
    pub stderr: Arc<Mutex<String>>,
}

/// Starts `ciclo` with `args` (normally [`serve_args`] plus extra flags) and waits until it
/// prints `listening on http://…`. Panics with the server's output if it exits or times out.
pub fn spawn_server<I, S>(args: I) -> ServerHandle
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    spawn_server_with(ciclo_command(args), START_TIMEOUT)
}

/// [`spawn_server`] with a prepared command (extra environment) and a start timeout.
pub fn spawn_server_with(mut command: Command, timeout: Duration) -> ServerHandle {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the ciclo binary");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(String::new()));

    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let out = child.stdout.take().expect("piped stdout");
    let collected = stdout.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            collected.lock().unwrap().push(line.clone());
            let _ = lines_tx.send(line);
        }
    });
    let mut err = child.stderr.take().expect("piped stderr");
    let log = stderr.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        while let Ok(n) = err.read(&mut buffer) {
            if n == 0 {
                break;
            }
            log.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });

    let deadline = Instant::now() + timeout;
    let mut url = None;
    let mut write_key = None;
    let mut owner_email = None;
    let mut owner_password = None;
    while url.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) => {
                let trimmed = line.trim();
                if let Some(rest) = trimmed.strip_prefix("listening on ") {
                    url = Some(rest.trim().to_string());
                } else if let Some(rest) = trimmed.strip_prefix("write key:") {
                    write_key =
                        write_key.or_else(|| rest.split_whitespace().next().map(str::to_string));
                } else if let Some(rest) = trimmed.strip_prefix("owner email:") {
                    owner_email = Some(rest.trim().to_string());
                } else if let Some(rest) = trimmed.strip_prefix("owner password:") {
                    let rest = rest.trim();
                    if !rest.starts_with('(') {
                        owner_password = Some(rest.to_string());
                    }
                }
            }
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "ciclo did not print `listening on` ({}):\n--- stdout\n{}\n--- stderr\n{}",
                    status.map_or("timed out".to_string(), |s| format!("exited: {s}")),
                    stdout.lock().unwrap().join("\n"),
                    stderr.lock().unwrap()
                );
            }
        }
    }
    let mut handle = ServerHandle {
        url: url.unwrap_or_default(),
        write_key: write_key.unwrap_or_default(),
        owner_email: owner_email.unwrap_or_default(),
        owner_password,
        child,
        stdout,
        stderr,
    };
    assert!(
        handle.write_key.starts_with("wk_"),
        "no write key printed:\n{}",
        handle.stdout_text()
    );
    assert!(
        !handle.owner_email.is_empty(),
        "no owner email printed:\n{}",
        handle.stdout_text()
    );
    handle.wait_until_healthy(Duration::from_secs(10));
    handle
}

impl ServerHandle {
    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `self.url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    fn wait_until_healthy(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let client = http();
        loop {
            if let Ok(r) = client.get(self.at("/healthz")).send() {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "/healthz never answered:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, without waiting for anything (for durability tests).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `timeout` for the process to exit; returns how it exited.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("cannot run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait failed") {
                return status;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!(
                    "ciclo did not stop within {timeout:?} of SIGTERM:\n{}",
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Signs in as the owner (the password printed on first start) and returns a client for
    /// the admin API with the session cookie.
    pub fn admin(&self) -> Admin {
        let password = self
            .owner_password
            .as_deref()
            .expect("no owner password printed (not a first start)");
        Admin::login(&self.url, &self.owner_email, password)
    }

    /// Sends a Segment `/v1/batch` with the write key; returns the status and JSON body.
    pub fn send_batch(&self, messages: serde_json::Value) -> (u16, serde_json::Value) {
        let response = http()
            .post(self.at("/v1/batch"))
            .basic_auth(&self.write_key, Some(""))
            .json(&serde_json::json!({ "batch": messages }))
            .send()
            .expect("POST /v1/batch failed");
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(serde_json::Value::Null))
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// A signed-in session of the admin API.
pub struct Admin {
    pub url: String,
    pub cookie: String,
    pub csrf_token: String,
    client: reqwest::blocking::Client,
}

impl Admin {
    pub fn login(url: &str, email: &str, password: &str) -> Admin {
        let client = http();
        let response = client
            .post(format!("{url}/api/v1/auth/login"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .expect("login request failed");
        assert_eq!(
            response.status().as_u16(),
            200,
            "login refused: {:?}",
            response.text()
        );
        let cookie = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("ciclo_session="))
            .and_then(|v| v.split(';').next())
            .expect("no session cookie")
            .to_string();
        let body: serde_json::Value = response.json().expect("login body");
        let csrf_token = body["csrf_token"].as_str().unwrap_or_default().to_string();
        Admin {
            url: url.to_string(),
            cookie,
            csrf_token,
            client,
        }
    }

    /// GET a path of the admin API; returns the status and JSON body.
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .expect("GET failed");
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(serde_json::Value::Null))
    }
}
