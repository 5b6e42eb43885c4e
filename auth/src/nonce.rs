//! The nonces of @bsv/sdk's `createNonce` and `verifyNonce` (16 random bytes and their HMAC under
//! protocol `[2, "server hmac"]`, key id the bytes as JavaScript's `TextDecoder` reads them), made
//! by `KeyMethods::create_nonce`, checked here against bytes the SDK produced.

use wallet_bsv::encoding::js_utf8;

#[test]
fn utf8_reads_as_javascripts_text_decoder() {
    let fixtures: serde_json::Value = serde_json::from_str(crate::tests::FIXTURES).unwrap();
    let cases = fixtures["utf8"].as_array().unwrap();
    assert!(cases.len() >= 15);
    for case in cases {
        let bytes = hex::decode(case["bytes"].as_str().unwrap()).unwrap();
        assert_eq!(js_utf8(&bytes), case["text"].as_str().unwrap(), "TextDecoder of {}", case["bytes"]);
    }
    // The rule itself: replacement, and exactly one byte-order mark dropped, only at the start.
    assert_eq!(js_utf8(b"\xef\xbb\xbfA"), "A");
    assert_eq!(js_utf8(b"\xef\xbb\xbf\xef\xbb\xbf"), "\u{feff}");
    assert_eq!(js_utf8(b"A\xef\xbb\xbf"), "A\u{feff}");
    assert_eq!(js_utf8(b"\xff\xef\xbb\xbf"), "\u{fffd}\u{feff}");
    assert_eq!(js_utf8(b"\xf0\x9f\x98"), "\u{fffd}");
}

#[tokio::test]
async fn nonces_are_the_sdks_and_verify() {
    let fixtures: serde_json::Value = serde_json::from_str(crate::tests::FIXTURES).unwrap();
    let keys = crate::tests::keys(fixtures["clientKey"].as_str().unwrap());
    for case in fixtures["nonces"].as_array().unwrap() {
        let first_half: [u8; 16] = hex::decode(case["firstHalf"].as_str().unwrap()).unwrap().try_into().unwrap();
        let nonce = keys.nonce_from(first_half, "self").await.unwrap();
        assert_eq!(nonce, case["nonce"].as_str().unwrap(), "createNonce of {}", case["firstHalf"]);
        assert!(keys.verify_nonce(&nonce, "self").await.unwrap());
    }
    let fresh = keys.create_nonce("self").await.unwrap();
    assert!(keys.verify_nonce(&fresh, "self").await.unwrap());
    let other = crate::tests::keys(fixtures["serverKey"].as_str().unwrap());
    assert!(!other.verify_nonce(&fresh, "self").await.unwrap(), "another wallet's nonce");
    assert!(!keys.verify_nonce("not base64!", "self").await.unwrap());
    assert!(!keys.verify_nonce("", "self").await.unwrap());
    let mut tampered = wallet_bsv::encoding::base64_decode(&fresh).unwrap();
    tampered[20] ^= 1;
    let tampered = wallet_bsv::encoding::base64_encode(&tampered);
    assert!(!keys.verify_nonce(&tampered, "self").await.unwrap());
}
