//! Opaque slot ids for the dialogue layer: `<type>.<start-unix>.<tag>` where `tag` is a truncated
//! HMAC-SHA256 under a random key kept inside the encrypted database. The model can repeat an id it
//! was shown but cannot invent or edit one (a changed time or type fails the tag). A verified id is
//! still re-checked for availability when booking, so a stale id yields `SlotTaken`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Result, StoreError};

#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SlotId(pub String);

impl std::fmt::Debug for SlotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotId({})", self.0)
    }
}

impl std::fmt::Display for SlotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone)]
pub struct SlotSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for SlotSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlotSigner(<redacted>)")
    }
}

impl SlotSigner {
    pub fn new(key: [u8; 32]) -> Self {
        SlotSigner { key }
    }

    fn tag(&self, type_id: i64, start: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("slot|{type_id}|{start}").as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..8])
    }

    pub fn sign(&self, type_id: i64, start: DateTime<Utc>) -> SlotId {
        let s = start.timestamp();
        SlotId(format!("{type_id}.{s}.{}", self.tag(type_id, s)))
    }

    /// The (type, start) an id stands for; `UnknownSlot` if it was not issued by this store.
    pub fn verify(&self, id: &SlotId) -> Result<(i64, DateTime<Utc>)> {
        let mut parts = id.0.split('.');
        let (Some(t), Some(s), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(StoreError::UnknownSlot);
        };
        let (Ok(t), Ok(s)) = (t.parse::<i64>(), s.parse::<i64>()) else {
            return Err(StoreError::UnknownSlot);
        };
        // Constant-time compare via the MAC API.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("slot|{t}|{s}").as_bytes());
        let tag = hex::decode(tag).map_err(|_| StoreError::UnknownSlot)?;
        mac.verify_truncated_left(&tag).map_err(|_| StoreError::UnknownSlot)?;
        if tag.len() != 8 {
            return Err(StoreError::UnknownSlot);
        }
        let start = DateTime::from_timestamp(s, 0).ok_or(StoreError::UnknownSlot)?;
        Ok((t, start))
    }
}
