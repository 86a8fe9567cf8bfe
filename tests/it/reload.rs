//! Reconfiguration without restart, over real HTTP with live mock issuers: requests
//! under load while the policy is swapped, audiences and issuers added and removed,
//! key stores carried over, refused reloads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::support::{Answer, Server, client, eventually};
use http::StatusCode;
use tower_jwt_auth::testing::{Endpoint, MockIssuer};
use tower_jwt_auth::{JwtAuthConfig, JwtAuthConfigBuilder, JwtAuthLayer, TrustedIssuer};

/// A builder trusting these issuers, each with these audiences, keys by discovery.
fn trusting(issuers: &[&MockIssuer], audiences: &[&str]) -> JwtAuthConfigBuilder {
    let mut builder = JwtAuthConfig::builder().http_client(client());
    for issuer in issuers {
        let mut trusted = TrustedIssuer::new(issuer.issuer());
        for audience in audiences {
            trusted = trusted.audience(*audience);
        }
        builder = builder.issuer(trusted);
    }
    builder
}

async fn start(builder: JwtAuthConfigBuilder) -> (Server, tower_jwt_auth::reload::ReloadHandle) {
    let config = builder.build().expect("config");
    assert!(
        config
            .wait_until_ready(std::time::Duration::from_secs(5))
            .await
    );
    let (layer, handle) = JwtAuthLayer::new(config).reloadable();
    (Server::start(layer).await, handle)
}

#[tokio::test]
async fn audiences_and_issuers_change_at_the_next_request_and_kept_stores_are_not_refetched() {
    let a = MockIssuer::start().await;
    let b = MockIssuer::start().await;
    let (server, reload) = start(trusting(&[&a, &b], &["api"])).await;
    let fetches = a.requests(Endpoint::Jwks);

    let new_audience = a.token().audience("api-v2").sign();
    server
        .bearer(&new_audience)
        .await
        .assert_invalid_token("audience not accepted");
    let changed = reload
        .reload(trusting(&[&a, &b], &["api", "api-v2"]))
        .await
        .expect("reload");
    assert_eq!(changed.audiences_added.len(), 2, "{changed}");
    server.bearer(&new_audience).await.assert_ok();

    let from_b = b.token().audience("api").sign();
    server.bearer(&from_b).await.assert_ok();
    let changed = reload
        .reload(trusting(&[&a], &["api", "api-v2"]))
        .await
        .expect("reload");
    assert_eq!(
        changed.issuers_removed,
        [b.issuer().to_owned()],
        "{changed}"
    );
    // A's key store was carried over twice: no new JWKS fetch.
    server
        .bearer(&a.token().audience("api").sign())
        .await
        .assert_ok();
    assert_eq!(a.requests(Endpoint::Jwks), fetches);
    // B's tokens stop at the next request (with one issuer left, its keys are the only
    // ones tried, so the refusal names the key).
    let refused = server.bearer(&from_b).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    assert_eq!(refused.error_code().as_deref(), Some("invalid_token"));

    // A new issuer's keys load before the swap: its first token passes, no 503.
    let c = MockIssuer::start().await;
    reload
        .reload(trusting(&[&a, &c], &["api"]))
        .await
        .expect("reload");
    server
        .bearer(&c.token().audience("api").sign())
        .await
        .assert_ok();
}

#[tokio::test]
async fn a_refused_reload_leaves_the_old_policy_serving() {
    let a = MockIssuer::start().await;
    let (server, reload) = start(trusting(&[&a], &["api"])).await;
    let good = a.token().audience("api").sign();
    for bad in [
        trusting(&[&a], &[""]),
        trusting(&[], &["api"]),
        trusting(&[&a], &["api"])
            .leeway(std::time::Duration::ZERO)
            .max_token_len(0),
    ] {
        assert!(reload.reload(bad).await.is_err());
        server.bearer(&good).await.assert_ok();
    }
    assert_eq!(reload.config().issuers().count(), 1);
}

/// Which policy an answer came from in the reload test below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    /// The token's audience, no permission asked: 200 with the token's subject.
    Old,
    /// Another audience only, and a permission the token lacks: 401, the audience
    /// refused.
    New,
}

impl Served {
    /// The policy in force after `reloads` swaps: they alternate, the old one first.
    fn after(reloads: usize) -> Self {
        if reloads.is_multiple_of(2) {
            Self::Old
        } else {
            Self::New
        }
    }

    /// The policy that gave `answer`, if one of the two gives exactly that answer.
    fn of(answer: &Answer) -> Option<Self> {
        let refused_audience = answer.status == StatusCode::UNAUTHORIZED
            && answer.error_code().as_deref() == Some("invalid_token")
            && answer
                .challenge
                .as_deref()
                .is_some_and(|c| c.contains("error_description=\"audience not accepted\""));
        match answer.status {
            StatusCode::OK if answer.body == "reader" => Some(Self::Old),
            _ if refused_audience => Some(Self::New),
            _ => None,
        }
    }
}

/// Each request notes the reloads completed before it is sent and those begun once its
/// answer is back: when the two are equal, one policy was in force the whole time and
/// only its answer is right; otherwise either is. A request that saw parts of both
/// policies at once (the old audiences with the new permission) gets a 403, the answer
/// of neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_requests_during_twenty_reloads_see_only_old_or_new_answers() {
    const RELOADS: usize = 20;
    const PER_POLICY: usize = 100;
    let a = MockIssuer::start().await;
    let old = || trusting(&[&a], &["api"]);
    let new = || trusting(&[&a], &["api-v2"]).require_permissions(["admin"]);
    let (server, reload) = start(old()).await;
    let server = Arc::new(server);
    let token = Arc::new(a.token().audience("api").subject("reader").sign());
    let begun = Arc::new(AtomicUsize::new(0));
    let completed = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (server, token, begun, completed, answered, done) = (
            Arc::clone(&server),
            Arc::clone(&token),
            Arc::clone(&begun),
            Arc::clone(&completed),
            Arc::clone(&answered),
            Arc::clone(&done),
        );
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.load(Ordering::SeqCst) {
                let before = completed.load(Ordering::SeqCst);
                let answer = server.bearer(&token).await;
                let after = begun.load(Ordering::SeqCst);
                answered.fetch_add(1, Ordering::SeqCst);
                seen.push((before, after, Served::of(&answer).ok_or(answer)));
            }
            seen
        }));
    }
    // Each policy, the first one too, serves its share of the requests before the next
    // swap.
    let share = async || {
        let enough = answered.load(Ordering::SeqCst) + PER_POLICY;
        eventually("a share of requests under one policy", async || {
            answered.load(Ordering::SeqCst) >= enough
        })
        .await;
    };
    share().await;
    for round in 1..=RELOADS {
        let next = if Served::after(round) == Served::New {
            new()
        } else {
            old()
        };
        begun.store(round, Ordering::SeqCst);
        reload.reload(next).await.expect("reload");
        completed.store(round, Ordering::SeqCst);
        share().await;
    }
    done.store(true, Ordering::SeqCst);
    let mut sent = 0;
    let mut pinned = [0; 2];
    for task in tasks {
        for (before, after, served) in task.await.expect("task") {
            sent += 1;
            let served = served.unwrap_or_else(|answer| {
                panic!("neither policy's answer, between reloads {before} and {after}: {answer:?}")
            });
            if before == after {
                assert_eq!(served, Served::after(before), "after reload {before}");
                pinned[before % 2] += 1;
            }
        }
    }
    assert!(sent >= (RELOADS + 1) * PER_POLICY, "{sent} requests");
    // Requests ran under each policy throughout: the exact check was not vacuous.
    assert!(pinned.iter().all(|&n| n > 0), "{pinned:?} of {sent}");
    assert_eq!(
        a.requests(Endpoint::Jwks),
        1,
        "no refetch across {RELOADS} reloads"
    );
}

#[tokio::test]
async fn a_used_single_use_token_stays_used_across_a_reload() {
    let a = MockIssuer::start().await;
    let (server, reload) = start(trusting(&[&a], &["api"]).single_use_tokens(true)).await;
    let once = a.token().audience("api").sign();
    server.bearer(&once).await.assert_ok();
    reload
        .reload(trusting(&[&a], &["api", "more"]).single_use_tokens(true))
        .await
        .expect("reload");
    server
        .bearer(&once)
        .await
        .assert_invalid_token("token already used");
}

#[tokio::test]
async fn revocations_in_a_files_memory_list_survive_a_reload() {
    use tower_jwt_auth::settings::{Format, Settings};
    let a = MockIssuer::start().await;
    let file = |audiences: &str| {
        let text = format!(
            "[[issuers]]\nissuer = \"{}\"\naudiences = [{audiences}]\n[state]\nrevocation = true\n",
            a.issuer()
        );
        Settings::parse(&text, Format::Toml)
            .expect("parses")
            .apply(JwtAuthConfig::builder().http_client(client()))
            .expect("applies")
    };
    let (server, reload) = start(file("\"api\"")).await;
    let revoked = a.token().audience("api").claim("jti", "gone").sign();
    server.bearer(&revoked).await.assert_ok();
    reload
        .config()
        .revocations()
        .expect("a revocation list")
        .revoke_token(a.issuer(), "gone")
        .await
        .expect("revoke");
    reload
        .reload(file("\"api\", \"more\""))
        .await
        .expect("reload");
    server
        .bearer(&revoked)
        .await
        .assert_invalid_token("token revoked");
}

mod watching {
    use std::path::Path;
    use std::time::Duration;

    use tower_jwt_auth::settings::{FileWatcher, ReloadReason};

    /// Writes `contents` to `path` the way editors save: a new file renamed over the old.
    fn save(path: &Path, contents: &str) {
        let temporary = path.with_extension("swp");
        std::fs::write(&temporary, contents).expect("write");
        std::fs::rename(&temporary, path).expect("rename");
    }

    /// The next reason the watcher gives, waiting up to 10 s for it.
    async fn next(watcher: &mut FileWatcher) -> ReloadReason {
        tokio::time::timeout(Duration::from_secs(10), watcher.changed())
            .await
            .expect("a reason within 10 s")
            .expect("the watcher runs")
    }

    /// The inotify instances this process holds (each notify watcher has one).
    #[cfg(target_os = "linux")]
    fn inotify_instances() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .expect("fds")
            .filter_map(Result::ok)
            .filter(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|target| target.as_os_str() == "anon_inode:inotify")
            })
            .count()
    }

    // SIGHUP reaches every watcher of the process, and the inotify count sees every
    // watcher's instance: the tests that hold one take turns.
    #[tokio::test]
    async fn a_file_watcher_gives_one_reason_per_content_change_and_one_per_sighup() {
        let _turn = crate::support::watcher_lock().await;
        let dir = std::env::temp_dir().join(format!("tower-jwt-auth-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let settings = dir.join("api.toml");
        let marker = dir.join("marker.txt");
        std::fs::write(&settings, "one").expect("write");
        std::fs::write(&marker, "0").expect("write");
        #[cfg(target_os = "linux")]
        let before = inotify_instances();
        let mut watcher = FileWatcher::new([&settings, &marker])
            .expect("watch")
            .debounce(Duration::from_millis(20));
        #[cfg(target_os = "linux")]
        assert_eq!(inotify_instances(), before + 1);
        let settings_changed = ReloadReason::File(settings.clone());
        let marker_changed = ReloadReason::File(marker.clone());
        // A step that must give no reason ends with an edit of the marker: the watcher
        // looks at its files in the order given, settings first, so a reason the step
        // gave wrongly comes out before the marker's.
        let mut marks = 0;
        let mut mark = || {
            marks += 1;
            std::fs::write(&marker, marks.to_string()).expect("write");
        };

        save(&settings, "two");
        assert_eq!(next(&mut watcher).await, settings_changed);
        mark();
        assert_eq!(
            next(&mut watcher).await,
            marker_changed,
            "one edit, one reason"
        );

        // Reading, touching and chmod change no content.
        std::fs::read(&settings).expect("read");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&settings)
            .expect("open");
        file.set_modified(std::time::SystemTime::now())
            .expect("touch");
        let mode = file.metadata().expect("metadata").permissions();
        std::fs::set_permissions(&settings, mode).expect("chmod");
        drop(file);
        mark();
        assert_eq!(next(&mut watcher).await, marker_changed, "access only");

        // Rewritten with the same content, in place and by rename.
        std::fs::write(&settings, "two").expect("write");
        save(&settings, "two");
        mark();
        assert_eq!(next(&mut watcher).await, marker_changed, "same content");

        // A broken file gives one reason, however often it is saved broken; the content
        // before it is a change again.
        save(&settings, "broken");
        assert_eq!(next(&mut watcher).await, settings_changed);
        save(&settings, "broken");
        mark();
        assert_eq!(next(&mut watcher).await, marker_changed, "still broken");
        save(&settings, "two");
        assert_eq!(next(&mut watcher).await, settings_changed, "restored");

        // A removed file is a change (the reload reports it), and so is its return.
        std::fs::remove_file(&settings).expect("remove");
        assert_eq!(next(&mut watcher).await, settings_changed, "removed");
        save(&settings, "two");
        assert_eq!(next(&mut watcher).await, settings_changed, "back");

        // SIGHUP always gives a reason, and only the one.
        crate::support::hang_up();
        assert_eq!(next(&mut watcher).await, ReloadReason::Signal);
        mark();
        assert_eq!(next(&mut watcher).await, marker_changed, "after SIGHUP");

        // Idle: nothing more, whatever the reads above left behind.
        let idle = tokio::time::timeout(Duration::from_secs(1), watcher.changed()).await;
        assert!(idle.is_err(), "a reason while idle: {idle:?}");

        // Dropped, it stops watching: its inotify instance is closed.
        drop(watcher);
        #[cfg(target_os = "linux")]
        {
            crate::support::eventually("the watcher's inotify instance closed", async || {
                inotify_instances() <= before
            })
            .await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[tokio::test]
async fn the_layers_verifier_follows_a_reload() {
    use tower_jwt_auth::StandardClaims;
    let a = MockIssuer::start().await;
    let config = trusting(&[&a], &["api"]).build().expect("config");
    assert!(
        config
            .wait_until_ready(std::time::Duration::from_secs(5))
            .await
    );
    let (layer, reload) = JwtAuthLayer::new(config).reloadable();
    let token = a.token().audience("api-v2").sign();
    let before = layer
        .verifier()
        .verify_async::<StandardClaims>(&token)
        .await;
    assert_eq!(
        before.expect_err("api-v2 is not accepted yet").kind(),
        tower_jwt_auth::ErrorKind::InvalidAudience
    );
    reload
        .reload(trusting(&[&a], &["api-v2"]))
        .await
        .expect("reload");
    layer
        .verifier()
        .verify_async::<StandardClaims>(&token)
        .await
        .expect("the verifier reads the reloaded audience");
}

#[tokio::test]
async fn a_reload_that_only_reorders_issuers_keeps_every_key_store() {
    let a = MockIssuer::start().await;
    let b = MockIssuer::start().await;
    let (server, reload) = start(trusting(&[&a, &b], &["api"])).await;
    let fetched = |issuer: &MockIssuer| {
        (
            issuer.requests(Endpoint::Discovery),
            issuer.requests(Endpoint::Jwks),
        )
    };
    let (before_a, before_b) = (fetched(&a), fetched(&b));
    let changed = reload
        .reload(trusting(&[&b, &a], &["api"]))
        .await
        .expect("reload");
    assert!(changed.issuers_added.is_empty(), "{changed}");
    assert!(changed.issuers_removed.is_empty(), "{changed}");
    for issuer in [&a, &b] {
        server
            .bearer(&issuer.token().audience("api").sign())
            .await
            .assert_ok();
    }
    assert_eq!(fetched(&a), before_a, "a's store was rebuilt");
    assert_eq!(fetched(&b), before_b, "b's store was rebuilt");
}
