//! Evidence for the parser decision: how many RFC 4475 torture messages the unmaintained rsip 0.4
//! classifies correctly (valid / valid-but-semantic-issue parsed, invalid rejected). The number is
//! printed (`cargo test -p fd-voice --test sip_rsip_baseline -- --nocapture`) and recorded in the
//! header of `src/sip/parse.rs`. The assertion only guards that every fixture was fed.

use std::path::Path;

#[test]
fn rsip_rfc4475_verdicts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rfc4475");
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("INDEX.tsv");
    let (mut right, mut wrong, mut panics, mut total) = (0, 0, 0, 0);
    let mut wrong_names = Vec::new();
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, verdict) = (cols[0], cols[3]);
        let bytes = std::fs::read(dir.join(file)).expect("fixture");
        total += 1;
        let res = std::panic::catch_unwind(|| rsip::SipMessage::try_from(bytes.as_slice()).is_ok());
        let parsed = match res {
            Ok(p) => p,
            Err(_) => {
                panics += 1;
                wrong_names.push(format!("{file}(panic)"));
                continue;
            }
        };
        let expect_ok = verdict != "invalid";
        if parsed == expect_ok {
            right += 1;
        } else {
            wrong += 1;
            wrong_names.push(format!(
                "{file}({})",
                if parsed { "accepted" } else { "rejected" }
            ));
        }
    }
    println!("rsip 0.4 on RFC 4475: {right}/{total} right, {wrong} wrong, {panics} panics");
    println!("wrong: {}", wrong_names.join(" "));
    assert_eq!(total, 49);
}
