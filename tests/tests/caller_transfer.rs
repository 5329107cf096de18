//! A blind transfer (REFER) from the far end to `sip:100@pbx.local` is followed by the
//! scripted caller to a local stand-in (stub DNS → loopback), so the transferor gets a
//! NOTIFY with a 200 sipfrag — what the appliance needs to record "transferred".

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fd_e2e::speech::SpeechCache;
use fd_e2e::{CallerConfig, ScriptedCaller, TestCallee};

#[test]
fn refer_to_a_name_lands_on_the_local_sink() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fd-e2e").join("caller_transfer");
    let _ = std::fs::remove_dir_all(&dir);
    let speech = SpeechCache::new(SpeechCache::default_dir()).unwrap();
    let mut pbx = TestCallee::start(&dir.join("pbx"), "100", &speech.speech("Front desk, this is Anna.").unwrap(), 20.0).unwrap();
    let mut appliance = TestCallee::start_controlled(&dir.join("appliance"), "frontdesk", &speech.speech("Press zero for the front desk.").unwrap(), 20.0).unwrap();
    let mut cfg = CallerConfig::new(&appliance.uri(), "+12175550166", dir.join("caller")).unwrap();
    cfg.transfer_sink_port = Some(pbx.sip_port);
    let mut caller = ScriptedCaller::start(cfg).unwrap();
    caller.wait_for_bot_turn(Duration::from_secs(20)).unwrap();
    caller.send_dtmf("0").unwrap();
    appliance.ctrl.as_mut().unwrap().command("transfer", "sip:100@pbx.local", Duration::from_secs(5)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pbx.answered() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let rec = caller.finish().unwrap();
    appliance.stop();
    pbx.stop();

    assert!(pbx.answered(), "the transfer target was never called");
    let tr = rec.events.iter().find(|e| e.kind.contains("TRANSFER")).unwrap_or_else(|| panic!("no transfer event: {:?}", rec.events));
    assert!(tr.param.contains("sip:100@pbx.local"), "{tr:?}");
    // the transferor was told it worked: NOTIFY (Event: refer) with a 2xx sipfrag
    let notify_ok = rec.datagrams.iter().filter_map(|d| std::str::from_utf8(&d.payload).ok()).any(|m| {
        m.starts_with("NOTIFY ") && m.to_ascii_lowercase().contains("event: refer") && m.contains("SIP/2.0 200")
    });
    assert!(notify_ok, "no NOTIFY with a 200 sipfrag from the caller");
}

#[test]
fn scenario_runner_provides_the_expected_transfer_target() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fd-e2e").join("caller_transfer_scenario");
    let _ = std::fs::remove_dir_all(&dir);
    let speech = SpeechCache::new(SpeechCache::default_dir()).unwrap();
    let mut appliance = TestCallee::start_controlled(&dir.join("appliance"), "frontdesk", &speech.speech("Press zero for the front desk.").unwrap(), 30.0).unwrap();
    let mut ctrl = appliance.ctrl.take().unwrap();
    // stand-in for the appliance's policy: transfer a while after the caller pressed 0
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(6));
        ctrl.command("transfer", "sip:100@pbx.local", Duration::from_secs(5))
    });
    let toml = r#"
        [[scenario]]
        id = "press-zero"
        from = "+12175550166"
        lines = [""]
        dtmf = ["0"]
        expect = { outcome = "transferred", target = "sip:100@pbx.local" }
    "#;
    let s = &fd_e2e::parse_scenarios(toml).unwrap()[0];
    let run = fd_e2e::run_scenario(s, &appliance.uri(), &fd_e2e::RunOptions::new(&dir)).unwrap();
    t.join().unwrap().unwrap();
    appliance.stop();
    eprintln!("{:?}", run.events);
    let tr = run.transfer.expect("transfer seen");
    assert!(tr.refer_to.contains("sip:100@pbx.local"), "{tr:?}");
    assert!(tr.target_answered);
    assert!(run.events.iter().any(|e| e.what == "turn 0: sent DTMF"), "{:?}", run.events);
}
