//! End-to-end tests with real peers (baresip, SIPp, kamailio, Chromium).
//!
//! The scripted-caller harness: [`ScriptedCaller`] drives one real SIP/RTP call from a
//! headless baresip (espeak-ng speech, RFC 4733 DTMF), follows the far end's audio live
//! from a loopback capture, and [`rtp::turn_latencies`] measures voice-to-voice latency
//! from that capture. [`run_scenario`] plays a `scenarios.toml` entry. Everything it
//! starts runs on 127.0.0.1 and is stopped on drop.
//!
//! Layering: `pcap`, `rtp`, `audio` and `scenario` parsing are pure (no I/O, no clock;
//! unit-tested with synthetic packets); `capture`, `baresip`, `caller`, `callee` are the
//! thin process/socket layer.

pub mod audio;
pub mod baresip;
pub mod callee;
pub mod caller;
pub mod capture;
pub mod dns;
pub mod error;
pub mod pcap;
pub mod ports;
pub mod proc;
pub mod rtp;
pub mod scenario;
pub mod speech;

pub use caller::{CallRecord, CallerConfig, SaidLine, ScriptedCaller};
pub use callee::TestCallee;
pub use error::{Error, Result};
pub use rtp::{percentile, summarize, BotTurn, LatencySummary, TurnLatency, VoiceParams};
pub use scenario::{load_scenarios, parse_scenarios, run_scenario, RunOptions, Scenario, ScenarioRun, TransferSeen};
