//! The mock issuer's browser console: a page at `/` to mint a token, see it decoded, copy
//! a curl command, and explain any token against this issuer. Plain HTML, CSS and a
//! little JavaScript served from the binary: no build step, no external assets, and
//! tokens go only to this local issuer.

use serde::Deserialize;
use serde_json::{Value, json};

use super::keys::TestKey;
use super::token::TokenBuilder;
use crate::algorithm::Algorithm;
use crate::config::JwtAuthConfig;
use crate::jwks::KeySet;
use crate::verifier::Verifier;

/// What the mint form sends.
#[derive(Deserialize)]
pub(super) struct MintForm {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    permissions: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    lifetime: Option<i64>,
    #[serde(default)]
    alg: String,
    #[serde(default)]
    claims: Option<Value>,
    #[serde(default)]
    url: String,
}

/// What the explain box sends.
#[derive(Deserialize)]
pub(super) struct ExplainForm {
    token: String,
    #[serde(default)]
    audience: String,
}

fn decode(segment: Option<&str>) -> Value {
    use base64::Engine as _;
    segment
        .and_then(|s| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

/// A token from the form, signed by a published key of the asked algorithm.
pub(super) fn mint(
    form: MintForm,
    issuer: &str,
    default_audience: &str,
    keys: &[TestKey],
) -> Result<Value, String> {
    let alg: Algorithm = if form.alg.is_empty() {
        keys.first().map_or(Algorithm::RS256, TestKey::algorithm)
    } else {
        form.alg
            .parse()
            .map_err(|_| format!("unknown algorithm {:?}", form.alg))?
    };
    let key = keys
        .iter()
        .find(|k| k.algorithm() == alg)
        .ok_or_else(|| format!("this issuer publishes no {alg} key"))?;
    let audience = if form.audience.is_empty() {
        default_audience
    } else {
        &form.audience
    };
    let mut token = TokenBuilder::new(key)
        .issuer(issuer)
        .audience(audience)
        .expires_in_secs(form.lifetime.unwrap_or(3600));
    if !form.sub.is_empty() {
        token = token.subject(form.sub);
    }
    let permissions: Vec<&str> = form
        .permissions
        .split([',', ' '])
        .filter(|p| !p.is_empty())
        .collect();
    if !permissions.is_empty() {
        token = token.permissions(permissions);
    }
    match form.claims {
        None | Some(Value::Null) => {}
        Some(Value::Object(claims)) => {
            for (name, value) in claims {
                token = token.claim(name, value);
            }
        }
        Some(_) => return Err("extra claims must be a JSON object".into()),
    }
    let token = token.sign();
    let mut parts = token.split('.');
    let (header, payload) = (decode(parts.next()), decode(parts.next()));
    let url = if form.url.is_empty() {
        "http://127.0.0.1:3000/"
    } else {
        &form.url
    };
    Ok(json!({
        "token": token,
        "header": header,
        "payload": payload,
        "curl": format!("curl -i {url} -H 'Authorization: Bearer {token}'"),
    }))
}

/// The layer's verdict on a pasted token, against this issuer's published keys.
pub(super) async fn explain(
    form: ExplainForm,
    issuer: &str,
    default_audience: &str,
    keys: &[TestKey],
) -> Result<Value, String> {
    let set = keys
        .iter()
        .filter(|k| k.secret().is_none())
        .fold(KeySet::new(), |set, key| set.merge(key.key_set()));
    let audience = if form.audience.is_empty() {
        default_audience
    } else {
        &form.audience
    };
    let config = JwtAuthConfig::builder()
        .issuer(issuer)
        .audience(audience)
        .key_set(set)
        .build()
        .map_err(|e| e.to_string())?;
    let report = Verifier::new(config).explain(form.token.trim()).await;
    serde_json::to_value(&report).map_err(|e| e.to_string())
}

/// The page.
pub(super) const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tower-jwt-auth mock issuer</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
  form { display: grid; grid-template-columns: 10rem 1fr; gap: .4rem .8rem; align-items: center; }
  input, select, textarea { font: inherit; padding: .3rem; }
  textarea { min-height: 4rem; font-family: ui-monospace, monospace; }
  button { font: inherit; padding: .4rem 1rem; grid-column: 2; justify-self: start; }
  pre, .token { background: #f4f4f4; padding: .6rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; font-family: ui-monospace, monospace; }
  .pass { color: #176b2c; } .failed { color: #b00020; font-weight: bold; } .not-run { color: #888; }
  .verdict { font-weight: bold; margin-top: .5rem; }
  .error { color: #b00020; }
</style>
</head>
<body>
<h1>Mock identity provider</h1>
<p>Issuer <code id="issuer">{ISSUER}</code>. Tokens minted here are signed with this issuer's test keys and never leave this machine.</p>

<h2>Mint a token</h2>
<form id="mint">
  <label for="sub">Subject</label><input id="sub" value="alice">
  <label for="permissions">Permissions</label><input id="permissions" value="read" placeholder="read,write">
  <label for="audience">Audience</label><input id="audience" value="{AUDIENCE}">
  <label for="lifetime">Lifetime (s)</label><input id="lifetime" type="number" value="3600">
  <label for="alg">Algorithm</label><select id="alg">{ALGS}</select>
  <label for="claims">Extra claims (JSON)</label><textarea id="claims">{}</textarea>
  <label for="url">API URL for curl</label><input id="url" value="http://127.0.0.1:3000/">
  <button id="mint-button" type="submit">Mint</button>
</form>
<p id="mint-error" class="error"></p>
<div id="minted" hidden>
  <h2>Token <button id="copy" type="button">Copy</button></h2>
  <div id="token" class="token"></div>
  <h2>Decoded</h2>
  <pre id="decoded"></pre>
  <h2>curl</h2>
  <pre id="curl"></pre>
</div>

<h2>Explain a token</h2>
<form id="explain">
  <label for="pasted">Token</label><textarea id="pasted"></textarea>
  <label for="explain-audience">Audience</label><input id="explain-audience" value="{AUDIENCE}">
  <button id="explain-button" type="submit">Explain</button>
</form>
<div id="report"></div>

<script>
const $ = (id) => document.getElementById(id);
async function post(path, body) {
  const response = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}
$("mint").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("mint-error").textContent = "";
  let claims = null;
  try { claims = JSON.parse($("claims").value || "{}"); } catch (e) { $("mint-error").textContent = "extra claims: " + e.message; return; }
  try {
    const minted = await post("/console/mint", {
      sub: $("sub").value, permissions: $("permissions").value, audience: $("audience").value,
      lifetime: Number($("lifetime").value), alg: $("alg").value, claims, url: $("url").value,
    });
    $("token").textContent = minted.token;
    $("decoded").textContent = JSON.stringify({ header: minted.header, payload: minted.payload }, null, 2);
    $("curl").textContent = minted.curl;
    $("pasted").value = minted.token;
    $("minted").hidden = false;
  } catch (e) { $("mint-error").textContent = e.message; }
});
$("copy").addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText($("token").textContent));
$("explain").addEventListener("submit", async (event) => {
  event.preventDefault();
  const report = $("report");
  report.textContent = "";
  try {
    const result = await post("/console/explain", { token: $("pasted").value, audience: $("explain-audience").value });
    const list = document.createElement("ul");
    for (const check of result.checks) {
      const item = document.createElement("li");
      item.className = check.status;
      item.textContent = check.status.replace("-", " ") + " · " + check.name + ": " + check.about;
      list.appendChild(item);
    }
    const verdict = document.createElement("p");
    verdict.id = "verdict";
    verdict.className = "verdict";
    verdict.textContent = result.accepted ? "accepted" : "refused: " + result.description + " (HTTP " + result.status + ")";
    report.append(verdict, list);
  } catch (e) { report.textContent = e.message; }
});
</script>
</body>
</html>
"#;
