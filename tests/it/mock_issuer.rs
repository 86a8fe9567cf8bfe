//! The test kit's `MockIssuer` over real HTTP: a fallback answers the paths the issuer
//! does not serve, with the issuer as it is at each request, and never the issuer's own.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use serde_json::Value;
use tower_jwt_auth::testing::{Endpoint, MockIssuer};

use crate::support::{client, ec_key, ed_key, eventually};

#[tokio::test]
async fn a_fallback_answers_what_the_issuer_does_not_serve_and_sees_the_issuer_of_the_moment() {
    let issuer = MockIssuer::builder()
        .key(ec_key().clone())
        .fallback(|issuer: &MockIssuer, request| {
            let seen = format!(
                "{} {} {} {}",
                request.method(),
                request.uri().path(),
                issuer.issuer(),
                issuer.active_key().kid(),
            );
            async move {
                let body = match request.into_body().collect().await {
                    Ok(body) => body.to_bytes(),
                    Err(_) => Bytes::new(),
                };
                let mut response = Response::new(Full::new(Bytes::from(format!(
                    "{seen} {}",
                    String::from_utf8_lossy(&body)
                ))));
                *response.status_mut() = StatusCode::IM_A_TEAPOT;
                response
            }
        })
        .start()
        .await;
    let http = client();

    let answer = http
        .post(format!("{}/console/mint", issuer.base_url()))
        .body("hello")
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(
        answer.text().await.expect("body"),
        format!("POST /console/mint {} ec-1 hello", issuer.issuer())
    );

    // The handler sees the keys as they are when the request comes.
    issuer.set_active(ed_key().clone());
    let answer = http
        .get(format!("{}/", issuer.base_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(
        answer.text().await.expect("body"),
        format!("GET / {} ed-1 ", issuer.issuer())
    );

    // The issuer's own routes never reach the fallback, and only they are counted.
    for url in [issuer.jwks_url(), issuer.discovery_url()] {
        let answer = http.get(&url).send().await.expect("request");
        assert_eq!(answer.status(), StatusCode::OK, "{url}");
        let document: Value = answer.json().await.expect("JSON");
        assert!(document.is_object(), "{url}: {document}");
    }
    assert_eq!(issuer.requests(Endpoint::Jwks), 1);
    assert_eq!(issuer.requests(Endpoint::Discovery), 1);

    // The fallback does not keep the server alive: dropping the issuer stops it.
    let url = format!("{}/", issuer.base_url());
    drop(issuer);
    eventually("the server stops", async || {
        client().get(&url).send().await.is_err()
    })
    .await;
}

#[tokio::test]
async fn without_a_fallback_other_paths_are_not_found() {
    let issuer = MockIssuer::builder().key(ec_key().clone()).start().await;
    let answer = client()
        .get(format!("{}/", issuer.base_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert_eq!(answer.text().await.expect("body"), "not found");
}
