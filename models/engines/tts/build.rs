// espeak-rs-sys (under piper-rs) uses libsonic but does not link it: `undefined symbol:
// sonicCreateStream`. Link Debian's static libsonic (apt libsonic-dev) here.
fn main() {
    println!("cargo:rustc-link-lib=static=sonic");
}
