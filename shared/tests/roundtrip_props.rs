//! Property tests: any request that passes validation survives encode -> decode unchanged,
//! and the JSON it encodes to decodes to the same value again.

use herald_shared::validate::validate_request;
use herald_shared::wire::*;
use proptest::prelude::*;

fn text(max: usize) -> impl Strategy<Value = String> {
    // Starts with a visible character: whitespace-only text is rightly refused.
    proptest::string::string_regex(&format!(
        "[a-zA-Z0-9éü€!?.,_-][a-zA-Z0-9 éü€!?.,_-]{{0,{}}}",
        max - 1
    ))
    .unwrap()
}

fn suggestion() -> impl Strategy<Value = Suggestion> {
    (text(25), text(64)).prop_map(|(plain_text, data)| Suggestion {
        reply: Some(SuggestionBody {
            plain_text,
            post_back: PostBack {
                data,
                extra: Extra::new(),
            },
            extra: Extra::new(),
        }),
        action: None,
        extra: Extra::new(),
    })
}

fn media() -> impl Strategy<Value = CardMedia> {
    (
        "[a-z]{1,20}",
        prop_oneof![
            Just(MediaHeight::Short),
            Just(MediaHeight::Medium),
            Just(MediaHeight::Tall)
        ],
    )
        .prop_map(|(path, height)| CardMedia {
            media_height: Some(height),
            content_info: ContentInfo {
                file_url: format!("https://cdn.example.com/{path}.png"),
                thumbnail_url: None,
                extra: Extra::new(),
            },
            extra: Extra::new(),
        })
}

fn card(max_suggestions: usize) -> impl Strategy<Value = CardContent> {
    (
        proptest::option::of(text(200)),
        proptest::option::of(text(300)),
        proptest::option::of(media()),
        proptest::collection::vec(suggestion(), 0..=max_suggestions),
    )
        .prop_filter(
            "a card needs title, description or media",
            |(t, d, m, _)| t.is_some() || d.is_some() || m.is_some(),
        )
        .prop_map(
            |(card_title, card_description, card_media, suggestions)| CardContent {
                card_title,
                card_description,
                card_media,
                suggestions: (!suggestions.is_empty()).then_some(suggestions),
                extra: Extra::new(),
            },
        )
}

fn details() -> impl Strategy<Value = RichCardDetails> {
    prop_oneof![
        (
            card(4),
            prop_oneof![
                Just(CardOrientation::Vertical),
                Just(CardOrientation::Horizontal)
            ]
        )
            .prop_map(|(content, o)| RichCardDetails {
                standalone: Some(StandaloneCard {
                    card_orientation: Some(o),
                    thumbnail_image_alignment: None,
                    content,
                    extra: Extra::new()
                }),
                carousel: None,
                extra: Extra::new(),
            }),
        (
            proptest::collection::vec(card(1), 2..=10),
            prop_oneof![Just(CardWidth::SmallWidth), Just(CardWidth::MediumWidth)]
        )
            .prop_map(|(contents, card_width)| RichCardDetails {
                standalone: None,
                carousel: Some(Carousel {
                    card_width,
                    contents,
                    extra: Extra::new()
                }),
                extra: Extra::new(),
            }),
    ]
}

fn fallback() -> impl Strategy<Value = SmsFallback> {
    (
        "[A-Z]{6}",
        "[0-9]{12,19}",
        "[0-9]{12,19}",
        proptest::collection::vec("[a-zA-Z0-9]{1,30}", 0..5),
    )
        .prop_map(|(sender_id, pe_id, dlt_te_id, variables)| {
            let message = std::iter::once("Hello".to_string())
                .chain((1..=variables.len()).map(|n| format!("{{{{{n}}}}}")))
                .collect::<Vec<_>>()
                .join(" ");
            SmsFallback {
                channel: "sms".into(),
                sender_id,
                pe_id,
                provider_name: "default".into(),
                content: SmsContent {
                    message,
                    dlt_te_id,
                    variables,
                    extra: Extra::new(),
                },
                extra: Extra::new(),
            }
        })
}

fn phone() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        "9[0-9]{9}".prop_map(|n| ("+91".to_string(), n)),
        Just(("+1".to_string(), "4155552671".to_string())),
        Just(("+44".to_string(), "7911123456".to_string())),
        Just(("+971".to_string(), "501234567".to_string())),
    ]
}

fn request() -> impl Strategy<Value = SendRequest> {
    (
        phone(),
        details(),
        proptest::option::of(proptest::collection::vec(fallback(), 1..=2)),
    )
        .prop_map(
            |((country_code, phone_number), rich_card_details, fallback)| SendRequest {
                country_code,
                phone_number,
                message: Some(RichMessage {
                    rich_card_details,
                    extra: Extra::new(),
                }),
                template: None,
                message_type: MessageType::StandaloneCarousel,
                campaign_id: None,
                fallback,
                extra: Extra::new(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn anything_valid_round_trips(request in request()) {
        prop_assert!(validate_request(&request).is_ok(), "{:?}", validate_request(&request));
        let json = serde_json::to_vec(&request).unwrap();
        let back: SendRequest = decode(&json).unwrap();
        prop_assert_eq!(&back, &request);
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        prop_assert_eq!(serde_json::to_value(&back).unwrap(), value);
    }
}
