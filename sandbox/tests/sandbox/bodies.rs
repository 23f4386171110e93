use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn the_guides_bodies_are_accepted_with_a_fresh_id() {
    let h = harness(config()).await;
    let mut ids = Vec::new();
    for name in [
        "request-curl-example-1.json",
        "request-standalone-carousel.json",
        "request-template-carousel.json",
    ] {
        let answer = h.send(&fixture(name)).await;
        ids.push(answer.assert_accepted());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "every id is fresh");
}

#[tokio::test]
async fn both_spellings_of_the_route_are_served() {
    let h = harness(config()).await;
    let body = serde_json::to_vec(&card_for(PHONE)).unwrap();
    let auth = format!("Basic {KEY}");
    for path in ["/v1/public/rcs/message/", "/v1/public/rcs/message"] {
        h.post(path, Some(&auth), body.clone())
            .await
            .assert_accepted();
    }
    let other = h.post("/v1/public/rcs/messages", Some(&auth), body).await;
    assert_eq!(other.status, 404);
    let get = h
        .client
        .get(h.sandbox.send_url())
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status(), 405);
    assert_eq!(h.sandbox.stats().requests, 2);
}

#[tokio::test]
async fn too_many_suggestions_are_refused_naming_the_field() {
    let h = harness(config()).await;
    let mut body = fixture("request-standalone-carousel.json");
    let suggestion = json!({"reply": {"plainText": "Pick me", "postBack": {"data": "x"}}});
    body["message"]["richCardDetails"]["standalone"]["content"]["suggestions"] =
        json!(vec![suggestion; 5]);
    let answer = h.send(&body).await;
    answer.assert_refused(
        400,
        "message.richCardDetails.standalone.content.suggestions: has 5 suggestions; \
         the limit is 4 per card",
    );
    assert!(h.sandbox.messages().is_empty());
}

#[tokio::test]
async fn every_violation_is_listed() {
    let h = harness(config()).await;
    // The guide's own test body, with its placeholder phone, and a title too long.
    let mut body = fixture("request-curl-example-2.json");
    body["message"]["richCardDetails"]["standalone"]["content"]["cardTitle"] =
        json!("x".repeat(201));
    let answer = h.send(&body).await;
    assert_eq!(answer.status, 400);
    let message = answer.body["message"].as_str().unwrap();
    assert!(
        message.starts_with("countryCode+phoneNumber: is not a phone number"),
        "{message}"
    );
    assert!(
        message.contains(
            "; message.richCardDetails.standalone.content.cardTitle: is 201 characters; \
             the limit is 200"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn undecodable_bodies_are_refused_with_the_json_path() {
    let h = harness(config()).await;
    let auth = format!("Basic {KEY}");
    let not_json = h
        .post(
            "/v1/public/rcs/message/",
            Some(&auth),
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(not_json.status, 400);
    let message = not_json.body["message"].as_str().unwrap();
    assert!(
        message.ends_with(": key must be a string at line 1 column 2"),
        "serde's reason and position: {message}"
    );

    let mut body = card_for(PHONE);
    body["message"]["richCardDetails"]["standalone"]["cardOrientation"] = json!("DIAGONAL");
    let answer = h.send(&body).await;
    assert_eq!(answer.status, 400);
    let message = answer.body["message"].as_str().unwrap();
    assert!(
        message.starts_with("message.richCardDetails.standalone.cardOrientation: unknown variant"),
        "{message}"
    );

    let stats = h.stats().await;
    assert_eq!(stats.count(400), 2);
    assert_eq!(stats.accepted, 0);
}
