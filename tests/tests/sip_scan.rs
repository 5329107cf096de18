//! Scanners learn nothing but the configured extension: `svwar` (SIPVicious) guessing extensions
//! with INVITE and REGISTER finds only `frontdesk`; from an untrusted source (allow-list set to
//! another network) `svmap` finds no SIP device at all.
//! Skips only if sipvicious is not installed (`apt-get install sipvicious`).

mod sip_common;

use fd_e2e::ports::{free_udp_port, free_udp_range};
use fd_voice::sip::ua::IpNet;
use sip_common::*;
use std::process::{Command, Stdio};

async fn run(cmd: &str, args: Vec<String>) -> String {
    let cmd = cmd.to_string();
    let dir = tmp_dir(&format!("scan-{}", args.len()));
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&cmd)
            .args(&args)
            .current_dir(dir)
            .env("HOME", std::env::temp_dir())
            .stdin(Stdio::null())
            .output()
    })
    .await
    .unwrap()
    .expect("run scanner");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Extensions svwar reported (rows of its result table: `| ext | status |`).
fn found(report: &str) -> Vec<String> {
    report
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            (cols.len() >= 3 && !cols[1].is_empty() && cols[1] != "Extension")
                .then(|| cols[1].to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svwar_finds_only_the_configured_extension() {
    if !have("svwar", "sipvicious") {
        return;
    }
    let port = free_udp_port().unwrap();
    let _ep = bind(endpoint_config(port, free_udp_range(20).unwrap())).await;
    let dict = tmp_dir("svwar-dict").join("names.txt");
    std::fs::write(
        &dict,
        "100\n101\n200\n1000\nadmin\noperator\nreception\nfrontdesk\n",
    )
    .unwrap();
    for method in ["INVITE", "REGISTER", "OPTIONS"] {
        let args = vec![
            "-d".into(),
            dict.display().to_string(),
            "-m".into(),
            method.into(),
            "-p".into(),
            port.to_string(),
            "127.0.0.1".into(),
        ];
        let report = run("svwar", args).await;
        let exts = found(&report);
        println!("svwar -m {method}: {exts:?}");
        assert!(
            exts.iter().all(|e| e == "frontdesk"),
            "svwar -m {method} found {exts:?}:\n{report}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svmap_sees_nothing_from_an_untrusted_source() {
    if !have("svmap", "sipvicious") {
        return;
    }
    let port = free_udp_port().unwrap();
    let mut cfg = endpoint_config(port, free_udp_range(20).unwrap());
    cfg.trusted_sources = vec!["10.99.0.0/16".parse::<IpNet>().unwrap()];
    let _ep = bind(cfg).await;
    let report = run(
        "svmap",
        vec!["-p".into(), port.to_string(), "127.0.0.1".into()],
    )
    .await;
    println!("{report}");
    assert!(
        !report.contains(&format!("127.0.0.1:{port}")),
        "svmap found the endpoint:\n{report}"
    );

    // Control: with an open allow-list svmap does see it (so the check above can fail).
    let port2 = free_udp_port().unwrap();
    let _ep2 = bind(endpoint_config(port2, free_udp_range(20).unwrap())).await;
    let report = run(
        "svmap",
        vec!["-p".into(), port2.to_string(), "127.0.0.1".into()],
    )
    .await;
    assert!(
        report.contains(&format!("127.0.0.1:{port2}")),
        "svmap control scan found nothing:\n{report}"
    );
}
