//! Keyed fast hashing whose results cannot be predicted from outside: foldhash seeded
//! from aws-lc's random generator, for maps and shards keyed by client-chosen input
//! (the verified-token cache, the in-memory state stores).

/// A foldhash state seeded from aws-lc's random generator, on top of foldhash's own
/// per-process seed. Each call draws a new seed.
pub(crate) fn random_state() -> foldhash::quality::SeedableRandomState {
    let mut seed = [0u8; 8];
    // On failure (no entropy at all), foldhash's own random seed still applies.
    let _ = aws_lc_rs::rand::fill(&mut seed);
    foldhash::quality::SeedableRandomState::with_seed(
        u64::from_le_bytes(seed),
        foldhash::SharedSeed::global_random(),
    )
}
