//! HTTP digest authentication for SIP (RFC 3261 §22, RFC 7616 algorithms as adopted for SIP by
//! RFC 8760): MD5 and SHA-256, with and without qop=auth.

use md5::{Digest as _, Md5};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

/// A parsed `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Whether the server offered qop=auth (we never do auth-int).
    pub qop_auth: bool,
    pub stale: bool,
}

/// Splits `k=v, k="v, with comma"` auth-params.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',' || b[i] == b'\t') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let val = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = String::new();
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                v.push(b[i] as char);
                i += 1;
            }
            i += 1;
            v
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            s[vs..i].trim().to_string()
        };
        if !key.is_empty() {
            out.push((key, val));
        }
    }
    out
}

impl Challenge {
    /// Parses one header value; `None` if it is not a Digest challenge we can answer.
    pub fn parse(value: &str) -> Option<Challenge> {
        let v = value.trim();
        let rest = v
            .strip_prefix("Digest")
            .or_else(|| v.strip_prefix("digest"))?;
        let p = params(rest);
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let algorithm = match get("algorithm").map(|a| a.to_ascii_uppercase()) {
            None => Algorithm::Md5,
            Some(a) if a == "MD5" => Algorithm::Md5,
            Some(a) if a == "SHA-256" => Algorithm::Sha256,
            _ => return None, // -sess variants, SHA-512-256: not offered by PBXs we target
        };
        let qop = get("qop");
        if let Some(q) = &qop {
            if !q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")) {
                return None; // auth-int only
            }
        }
        Some(Challenge {
            realm: get("realm")?,
            nonce: get("nonce")?,
            opaque: get("opaque"),
            algorithm,
            qop_auth: qop.is_some(),
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// Picks the strongest challenge we support among several header values.
    pub fn best<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
        let all: Vec<Challenge> = values.filter_map(Challenge::parse).collect();
        all.iter()
            .find(|c| c.algorithm == Algorithm::Sha256)
            .or(all.first())
            .cloned()
    }
}

fn h(alg: Algorithm, data: &str) -> String {
    match alg {
        Algorithm::Md5 => hex::encode(Md5::digest(data.as_bytes())),
        Algorithm::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
    }
}

/// The digest `response` value.
pub fn response(
    c: &Challenge,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    let ha1 = h(c.algorithm, &format!("{user}:{}:{password}", c.realm));
    let ha2 = h(c.algorithm, &format!("{method}:{uri}"));
    if c.qop_auth {
        h(
            c.algorithm,
            &format!("{ha1}:{}:{nc:08x}:{cnonce}:auth:{ha2}", c.nonce),
        )
    } else {
        h(c.algorithm, &format!("{ha1}:{}:{ha2}", c.nonce))
    }
}

/// A complete `Authorization` / `Proxy-Authorization` header value.
pub fn authorization(
    c: &Challenge,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    let resp = response(c, user, password, method, uri, cnonce, nc);
    let alg = match c.algorithm {
        Algorithm::Md5 => "MD5",
        Algorithm::Sha256 => "SHA-256",
    };
    let mut s = format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{resp}\", algorithm={alg}",
        c.realm, c.nonce
    );
    if c.qop_auth {
        s.push_str(&format!(", cnonce=\"{cnonce}\", qop=auth, nc={nc:08x}"));
    }
    if let Some(o) = &c.opaque {
        s.push_str(&format!(", opaque=\"{o}\""));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1 worked example (the hash arithmetic is the same for SIP).
    const CH: &str = "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, \
nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    #[test]
    fn rfc7616_sha256_and_md5_examples() {
        let c = Challenge::parse(CH).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert!(c.qop_auth);
        assert_eq!(
            response(
                &c,
                "Mufasa",
                "Circle of Life",
                "GET",
                "/dir/index.html",
                CNONCE,
                1
            ),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        let md5 = Challenge::parse(&CH.replace("SHA-256", "MD5")).unwrap();
        assert_eq!(
            response(
                &md5,
                "Mufasa",
                "Circle of Life",
                "GET",
                "/dir/index.html",
                CNONCE,
                1
            ),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn rfc2617_md5_without_qop_and_best_choice() {
        // RFC 2617 §3.5 values recomputed without qop: H(H(A1):nonce:H(A2)).
        let c = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\"",
        )
        .unwrap();
        assert!(!c.qop_auth);
        assert_eq!(c.algorithm, Algorithm::Md5);
        let r = response(
            &c,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "",
            1,
        );
        // Independently computed with Python hashlib.
        assert_eq!(r, "670fd8c2df070c60b045671b8b24ff02");
        let a = authorization(
            &c,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "",
            1,
        );
        assert!(a.contains(&format!("response=\"{r}\"")) && !a.contains("qop"));
        let best = Challenge::best(
            [
                "Digest realm=\"r\", nonce=\"n\", algorithm=MD5",
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256",
            ]
            .into_iter(),
        );
        assert_eq!(best.unwrap().algorithm, Algorithm::Sha256);
        assert!(Challenge::parse("Basic realm=\"x\"").is_none());
        assert!(Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"").is_none());
    }
}
