//! The send endpoint's answer: `{"result": true, "message": "...", "id": "<uuid>"}`.

use serde::{Deserialize, Serialize};

use super::Extra;

/// Interakt's answer to a send. Error bodies are undocumented, so every field but `result`
/// is optional and unknown ones are kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SendResponse {
    pub result: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Interakt's message id; webhook events refer to the message by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
