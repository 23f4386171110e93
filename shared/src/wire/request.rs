//! `POST /rcs/message/` request bodies: the standalone rich card, the carousel of several
//! cards, the template carousel, and the SMS fallback list.

use serde::{Deserialize, Serialize};

use super::Extra;

/// One send request, as Interakt's `POST /rcs/message/` takes it.
///
/// The guide's two shapes share this struct: `type: "STANDALONE_CAROUSEL"` carries
/// `message`, `type: "Template"` carries `template` (and optionally `campaignId`).
/// [`crate::validate`] checks that the right one is present.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendRequest {
    /// `+91`: the country calling code, with its plus sign.
    pub country_code: String,
    /// The national number without the country code: `9999999999`.
    pub phone_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<RichMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Template>,
    #[serde(rename = "type")]
    pub message_type: MessageType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Vec<SmsFallback>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The request's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageType {
    /// A rich card or a carousel of rich cards composed in the request.
    #[serde(rename = "STANDALONE_CAROUSEL")]
    StandaloneCarousel,
    /// A carousel template registered in the Interakt dashboard.
    #[serde(rename = "Template")]
    Template,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RichMessage {
    pub rich_card_details: RichCardDetails,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Either one standalone card or a carousel of several.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RichCardDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standalone: Option<StandaloneCard>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carousel: Option<Carousel>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StandaloneCard {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_orientation: Option<CardOrientation>,
    /// `LEFT` / `RIGHT`; RBM requires it for horizontal cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_image_alignment: Option<String>,
    pub content: CardContent,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CardOrientation {
    Vertical,
    Horizontal,
}

/// Several cards shown side by side (2 to 10).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Carousel {
    pub card_width: CardWidth,
    pub contents: Vec<CardContent>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CardWidth {
    SmallWidth,
    MediumWidth,
}

/// What one card shows. RBM needs at least one of title, description and media.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_media: Option<CardMedia>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<Vec<Suggestion>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardMedia {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_height: Option<MediaHeight>,
    pub content_info: ContentInfo,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MediaHeight {
    Short,
    Medium,
    Tall,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentInfo {
    pub file_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A suggestion chip under a card: a reply (the guide's only kind) or an action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<SuggestionBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<SuggestionBody>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The text shown on a suggestion and the data its tap posts back through webhooks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestionBody {
    pub plain_text: String,
    pub post_back: PostBack,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PostBack {
    pub data: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A carousel template registered in the dashboard, filled with per-card body values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    pub name: String,
    pub language_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carousel_cards: Option<Vec<TemplateCard>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateCard {
    pub body_values: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One SMS fallback. Unlike the rest of the body, these fields are snake_case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SmsFallback {
    /// Always `"sms"`.
    pub channel: String,
    /// DLT header, e.g. `INTRKT`.
    pub sender_id: String,
    /// DLT principal entity id (numeric).
    pub pe_id: String,
    pub provider_name: String,
    pub content: SmsContent,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SmsContent {
    /// The registered DLT template text with `{{1}}`, `{{2}}`... placeholders.
    pub message: String,
    /// DLT template id (numeric).
    pub dlt_te_id: String,
    /// Values for the placeholders, in order.
    pub variables: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
