//! The public surface: the crate root holds what an application's wiring names, at most
//! 25 names; everything else lives in the module of its job.

#[test]
fn the_crate_root_reexports_at_most_25_names() {
    let lib = include_str!("../../src/lib.rs");
    let mut names = Vec::new();
    let mut statement = String::new();
    for line in lib.lines() {
        let line = line.trim();
        if statement.is_empty() && !line.starts_with("pub use ") {
            continue;
        }
        statement.push_str(line);
        if !line.ends_with(';') {
            continue;
        }
        let path = statement
            .trim_start_matches("pub use ")
            .trim_end_matches(';')
            .to_owned();
        statement.clear();
        let list = match path.split_once('{') {
            Some((_, rest)) => rest.trim_end_matches('}').to_owned(),
            None => path.rsplit("::").next().unwrap_or_default().to_owned(),
        };
        names.extend(
            list.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        );
    }
    assert!(names.len() >= 20, "the parse found too few: {names:?}");
    assert!(
        names.len() <= 25,
        "{} names at the root: {names:?}",
        names.len()
    );
    for moved in [
        "JwtAuth",
        "ResponseFuture",
        "ResponseBody",
        "CacheOptions",
        "OUTCOMES",
    ] {
        assert!(!names.iter().any(|n| n == moved), "{moved} is at the root");
    }
}
