//! The API also speaks JSON, for operators with curl.

mod common;

use std::sync::Arc;

use common::{minter, start};
use reqwest::StatusCode;
use serde_json::{json, Value};
use wallet_testkit::{scripted_request, Script, ScriptedCosigner, KNOWN_WALLET};
use wallet_traits::WalletId;
use wallet_transport_common::{audience_of, ServerLimits};

#[tokio::test(flavor = "multi_thread")]
async fn json_bodies_work() {
    let server = start(Arc::new(ScriptedCosigner::new()), ServerLimits::default(), None).await;
    let url = &server.url;
    let token = || minter().mint(&audience_of(url), &WalletId::new(KNOWN_WALLET).unwrap()).unwrap().to_string();
    let http = reqwest::Client::new();

    let r = http.get(format!("{url}/v1/wallets/{KNOWN_WALLET}/keys/0")).bearer_auth(token()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["threshold"], 2);

    let r = http.get(format!("{url}/v1/wallets/{KNOWN_WALLET}/keys/7x")).bearer_auth(token()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["kind"], "invalid_input");

    let req = scripted_request(Script::Echo);
    let eid = req.execution_id.to_string();
    let r = http.post(format!("{url}/v1/sessions")).bearer_auth(token()).json(&req).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({ "session": eid }));

    let batch = json!([{ "execution_id": eid, "stage": 0, "from": 0, "to": 1, "broadcast": false, "seq": 0, "payload": [1, 2, 3] }]);
    let r =
        http.post(format!("{url}/v1/sessions/{eid}/exchange")).bearer_auth(token()).json(&batch).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["ended"], false);
    assert_eq!(got["events"][0]["Message"]["payload"], json!([1, 2, 3]));
    assert_eq!(got["events"][0]["Message"]["from"], 1);

    let r = http.delete(format!("{url}/v1/sessions/{eid}")).bearer_auth(token()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let r = http.get(format!("{url}/v2/nothing")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap()["kind"], "unsupported");
}
