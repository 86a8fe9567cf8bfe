//! Arbitrary `Authorization` and `Cookie` header values through the whole layer: never a
//! panic, never a 5xx.
#![no_main]

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::{HeaderValue, Request, Response};
use libfuzzer_sys::fuzz_target;
use tower::{Layer, Service};
use tower_jwt_auth::JwtAuthLayer;
use tower_jwt_auth_fuzz::config;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut service =
        JwtAuthLayer::new(config()).layer(tower::service_fn(|_req: Request<String>| {
            std::future::ready(Ok::<_, Infallible>(Response::new(String::new())))
        }));
    let mut request = Request::new(String::new());
    request.headers_mut().append("authorization", value.clone());
    if data.first() == Some(&b'B') {
        request.headers_mut().append("authorization", value);
    }
    let mut cx = Context::from_waker(Waker::noop());
    // Static keys: the future is ready at once.
    if let Poll::Ready(Ok(response)) = pin!(service.call(request)).poll(&mut cx) {
        assert!(
            !response.status().is_server_error(),
            "{}",
            response.status()
        );
    } else {
        panic!("the layer did not answer at once with static keys");
    }
});
