//! The optional hint from a small grammar-constrained model. The policy uses it only to fill gaps
//! the rules leave (an unusually phrased intent, an appointment type); it never overrides a
//! rule-extracted date, time or number, and its "yes" never commits anything.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::facts::PracticeFacts;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmReading {
    #[serde(default)]
    pub intent: Option<String>,
    #[serde(default)]
    pub appointment_type: Option<String>,
    #[serde(default)]
    pub date_text: Option<String>,
    #[serde(default)]
    pub time_text: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub phone_digits: Option<String>,
    #[serde(default)]
    pub yes_no: Option<String>,
}

pub const INTENTS: &[&str] = &["book", "reschedule", "cancel", "question", "message", "human", "emergency", "goodbye", "other"];

/// JSON schema for the model's grammar (llama.cpp `json_schema_to_grammar`-compatible subset).
pub fn llm_reading_json_schema() -> serde_json::Value {
    let s = json!({"type": ["string", "null"], "maxLength": 40});
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "intent": {"enum": INTENTS},
            "appointment_type": {"type": ["string", "null"], "maxLength": 40},
            "date_text": s,
            "time_text": s,
            "first_name": {"type": ["string", "null"], "maxLength": 30},
            "last_name": {"type": ["string", "null"], "maxLength": 30},
            "phone_digits": {"type": ["string", "null"], "pattern": "^[0-9]{0,11}$"},
            "yes_no": {"enum": ["yes", "no", null]}
        },
        "required": ["intent"]
    })
}

/// Short static system prompt (its KV cache is kept; only the caller's turn is new).
pub fn llm_system_prompt(facts: &PracticeFacts) -> String {
    let types: Vec<&str> = facts.appointment_types.iter().map(|t| t.name.as_str()).collect();
    format!(
        "You label one caller utterance to the dental office {name}. Output JSON only.\n\
         intent: book, reschedule, cancel, question, message, human, emergency, goodbye or other.\n\
         appointment_type: one of [{types}] or null.\n\
         date_text/time_text: copy the caller's own words for the day and time, or null. Never compute dates.\n\
         first_name/last_name: only if the caller says their own name.\n\
         phone_digits: digits the caller read out, or null.\n\
         yes_no: yes or no if the utterance answers a yes/no question, else null.\n\
         Never invent anything that is not in the utterance.",
        name = facts.name,
        types = types.join(", ")
    )
}
