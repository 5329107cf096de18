//! Shared by the receptionist end-to-end tests: start a real `frontdesk serve` (real engines, real
//! SQLCipher store, dev model bundle), and check the store against a scenario's `expect`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fd_store::chrono::NaiveDateTime;
use fd_store::{Actor, AppointmentStatus, CallPage, Store};

/// `target/<profile>/` of this test binary (`target/<profile>/deps/<test>-<hash>`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

pub fn cache_dir() -> PathBuf {
    std::env::var_os("FRONTDESK_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/frontdesk"))
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

pub fn free_udp_port() -> u16 {
    // Bind to 0 and release; good enough on loopback for sequential tests.
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let p = s.local_addr().unwrap().port();
    let t = std::net::TcpListener::bind(("127.0.0.1", p));
    if t.is_ok() {
        p
    } else {
        free_udp_port()
    }
}

/// A running appliance; killed (SIGTERM, then SIGKILL) on drop.
pub struct Appliance {
    child: Child,
    pub data_dir: PathBuf,
    pub sip_port: u16,
    pub http_port: u16,
    pub stderr_log: PathBuf,
}

impl Appliance {
    pub fn start(work: &Path, now: &str) -> Appliance {
        let frontdesk = bin_dir().join("frontdesk");
        assert!(frontdesk.exists(), "{} is missing: build the workspace first (packaging/setup.sh)", frontdesk.display());
        let bundle = cache_dir().join("bundles/dev");
        assert!(bundle.join("manifest.json").exists(), "no dev bundle at {}: run packaging/setup.sh", bundle.display());
        let data_dir = work.join("data");
        let sip_port = free_udp_port();
        let http_port = free_udp_port();
        let stderr_log = work.join("frontdesk.stderr.log");
        let mut child = Command::new(&frontdesk)
            .args(["serve", "--dev", "--data-dir"])
            .arg(&data_dir)
            .arg("--practice")
            .arg(fixture("callers/practice.toml"))
            .arg("--bundle")
            .arg(&bundle)
            .args(["--sip-listen", &format!("127.0.0.1:{sip_port}")])
            .args(["--http-listen", &format!("127.0.0.1:{http_port}")])
            .args(["--now", now])
            .env("FRONTDESK_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .expect("spawn frontdesk");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut app = Appliance { child, data_dir, sip_port, http_port, stderr_log };
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(l) if l.starts_with("Front Desk is up") => break,
                Ok(_) => {}
                Err(_) => {
                    if let Ok(Some(st)) = app.child.try_wait() {
                        panic!("frontdesk exited ({st}) before it was up:\n{}", std::fs::read_to_string(&app.stderr_log).unwrap_or_default());
                    }
                    if std::time::Instant::now() > deadline {
                        panic!("frontdesk not up after 120 s:\n{}", std::fs::read_to_string(&app.stderr_log).unwrap_or_default());
                    }
                }
            }
        }
        // Keep draining stdout so the appliance never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        app
    }

    pub fn uri(&self) -> String {
        format!("sip:frontdesk@127.0.0.1:{}", self.sip_port)
    }

    pub fn stop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let exited = (0..100).any(|_| {
            let done = matches!(self.child.try_wait(), Ok(Some(_)));
            if !done {
                std::thread::sleep(Duration::from_millis(100));
            }
            done
        });
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.discard_model_copy();
    }

    /// The appliance installs its own copy of the bundle (~260 MB) into the data directory: a
    /// full scenario run left 3 GB in /tmp each time until the disk filled. The store, key and
    /// recordings stay for inspection; the models are the cache's and can go.
    fn discard_model_copy(&self) {
        let models = self.data_dir.join("models");
        if let Err(e) = std::fs::remove_dir_all(&models) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!(
                    "could not remove the model copy at {}: {e}",
                    models.display()
                );
            }
        }
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Appointments as (id, type, local start, status, patient name, rescheduled_from).
type Row = (i64, String, NaiveDateTime, AppointmentStatus, String, Option<i64>);

pub fn appointments(store: &Store) -> Vec<Row> {
    store
        .list_appointments(None, 10_000, Actor::Cli)
        .unwrap()
        .into_iter()
        .map(|a| (a.id, a.type_name, a.local_start, a.status, a.patient_name, a.rescheduled_from))
        .collect()
}

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .unwrap_or_else(|_| panic!("bad time in expect: {s}"))
}

fn norm(s: &str) -> String {
    s.to_lowercase().chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect::<String>().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks the store after one scenario's call against `expect`; `before` is the appointment book
/// before the call. Returns the list of failures (empty = pass).
pub fn check_expect(store: &Store, before: &[Row], expect: &toml::Table) -> Vec<String> {
    let mut fails = Vec::new();
    let s = |k: &str| expect.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let calls = store.list_calls(CallPage { before: None, limit: 1 }, Actor::Cli).unwrap();
    let Some(call) = calls.first() else {
        return vec!["no call was recorded".into()];
    };
    if let Some(o) = s("outcome") {
        if call.outcome.as_deref() != Some(o.as_str()) {
            fails.push(format!("outcome: expected {o}, recorded {:?}", call.outcome));
        }
    }
    let after = appointments(store);
    let new: Vec<&Row> = after.iter().filter(|a| !before.iter().any(|b| b.0 == a.0)).collect();
    let changed: Vec<&Row> = after.iter().filter(|a| before.iter().any(|b| b.0 == a.0 && b.3 != a.3)).collect();
    let booked: Vec<&&Row> = new.iter().filter(|a| a.3 == AppointmentStatus::Booked).collect();

    let wants_booking = s("start").is_some() || s("date").is_some() || s("type").is_some();
    if wants_booking {
        match booked.as_slice() {
            [a] => {
                if let Some(t) = s("type") {
                    if a.1 != t {
                        fails.push(format!("type: expected {t}, booked {}", a.1));
                    }
                }
                if let Some(st) = s("start") {
                    if a.2 != local(&st) {
                        fails.push(format!("start: expected {st}, booked {}", a.2));
                    }
                }
                if let Some(d) = s("date") {
                    if a.2.date().to_string() != d {
                        fails.push(format!("date: expected {d}, booked {}", a.2.date()));
                    }
                }
                if let Some(p) = s("patient") {
                    if norm(&a.4) != norm(&p) {
                        fails.push(format!("patient: expected {p}, booked for {}", a.4));
                    }
                }
                if let Some(phone) = s("phone") {
                    let appt = store.appointment(a.0, Actor::Cli).unwrap();
                    let pats = store.patients_by_phone(&phone, Actor::Cli).unwrap();
                    if !pats.iter().any(|p| p.id == appt.patient_id) {
                        fails.push(format!("phone: the booked patient does not have phone {phone}"));
                    }
                }
                if let Some(from) = s("from_start") {
                    let old = a.5.and_then(|id| after.iter().find(|x| x.0 == id));
                    match old {
                        Some(o) if o.2 == local(&from) && o.3 == AppointmentStatus::Cancelled => {}
                        other => fails.push(format!("from_start: expected the {from} appointment moved, rescheduled_from is {other:?}")),
                    }
                }
            }
            other => fails.push(format!("expected exactly one new booking, found {}", other.len())),
        }
    } else if !booked.is_empty() {
        fails.push(format!("nothing should have been booked, found {} new booking(s)", booked.len()));
    }
    if let Some(cs) = s("cancelled_start") {
        match changed.as_slice() {
            [a] if a.2 == local(&cs) && a.3 == AppointmentStatus::Cancelled => {}
            other => fails.push(format!("cancelled_start: expected only the {cs} appointment cancelled, changed: {other:?}")),
        }
    } else {
        let allowed = s("from_start").map(|f| local(&f));
        for a in &changed {
            if Some(a.2) != allowed {
                fails.push(format!("appointment at {} changed to {:?} but should not have", a.2, a.3));
            }
        }
    }
    if s("callback").is_some() || s("topic_contains").is_some() || (s("outcome").as_deref() == Some("message")) {
        let msgs = store.list_messages(1, Actor::Cli).unwrap();
        match msgs.first() {
            None => fails.push("expected a message, none taken".into()),
            Some(m) => {
                if let Some(p) = s("patient") {
                    if m.caller_name.as_deref().map(norm) != Some(norm(&p)) {
                        fails.push(format!("message name: expected {p}, got {:?}", m.caller_name));
                    }
                }
                if let Some(cb) = s("callback") {
                    if m.callback.as_deref() != Some(cb.as_str()) {
                        fails.push(format!("callback: expected {cb}, got {:?}", m.callback));
                    }
                }
                if let Some(t) = s("topic_contains") {
                    let hay = format!("{} {}", m.topic, m.body).to_lowercase();
                    if !hay.contains(&t.to_lowercase()) {
                        fails.push(format!("message topic does not mention {t:?}"));
                    }
                }
            }
        }
    }
    let turns = store.call_turns(call.id, Actor::Cli).unwrap();
    let said: String = turns.iter().filter(|t| t.speaker != "caller").map(|t| t.text.to_lowercase()).collect::<Vec<_>>().join(" ");
    for v in expect.get("says").and_then(|v| v.as_array()).into_iter().flatten() {
        let v = v.as_str().unwrap_or_default();
        if !said.contains(&v.to_lowercase()) {
            fails.push(format!("the receptionist never said {v:?}"));
        }
    }
    for v in expect.get("never_says").and_then(|v| v.as_array()).into_iter().flatten() {
        let v = v.as_str().unwrap_or_default();
        if said.contains(&v.to_lowercase()) {
            fails.push(format!("the receptionist said {v:?}"));
        }
    }
    // A caller who went on after a pause is heard again as one turn; the transcript shows that
    // turn once, not its first part and then the whole.
    let heard: Vec<String> = turns.iter().filter(|t| t.speaker == "caller").map(|t| norm(&t.text)).collect();
    for w in heard.windows(2) {
        if w[0].len() >= 12 && w[1].len() > w[0].len() && w[1].starts_with(&w[0]) {
            fails.push("transcript: a caller turn is repeated as the start of the next one".into());
        }
    }
    fails
}
