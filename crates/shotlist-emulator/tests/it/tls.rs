//! Both listeners over TLS: a client that trusts the certificate speaks every API and
//! downloads from the media host; one that does not is refused at the handshake.

use reqwest::StatusCode;
use shotlist_emulator::{Emulator, EmulatorConfig, EmulatorError, TlsFiles};
use shotlist_models::limits::Api;

use crate::support::*;

#[tokio::test]
async fn both_listeners_serve_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let emu = start(EmulatorConfig {
        tls: Some(TlsFiles {
            cert: cert.clone(),
            key,
        }),
        ..fast()
    })
    .await;
    let base = emu.base_url();
    assert_eq!(base, format!("https://{}", emu.addr()));
    assert_eq!(
        emu.media_base_url(),
        format!("https://{}", emu.media_addr())
    );
    let c = tls_client(&cert);
    let (size, seconds) = smallest(Api::Fal, FAL_MODEL);
    let s = fal_submit(
        &c,
        &base,
        FAL_MODEL,
        &model_input(Api::Fal, FAL_MODEL, "tls", size, seconds),
    )
    .await
    .body;
    assert!(s["status_url"].as_str().unwrap().starts_with("https://"));
    fal_poll(&c, s["status_url"].as_str().unwrap()).await;
    let result = answer(c.get(s["response_url"].as_str().unwrap())).await;
    let url = result.body["video"]["url"].as_str().unwrap();
    assert!(url.starts_with("https://"), "{url}");
    let video = c.get(url).send().await.unwrap();
    assert_eq!(video.status(), StatusCode::OK);
    assert_mp4(&video.bytes().await.unwrap());
    let openai = answer(c.get(format!("{base}/v1/videos"))).await;
    assert_eq!(openai.status, StatusCode::OK);
    // An untrusting client fails the handshake; plain HTTP gets no answer.
    assert!(
        client()
            .get(format!("{base}/v1/videos"))
            .send()
            .await
            .is_err()
    );
    let plain = format!("http://{}/v1/videos", emu.addr());
    assert!(client().get(plain).send().await.is_err());
    emu.shutdown().await;
}

#[tokio::test]
async fn a_missing_or_wrong_certificate_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    for files in [
        TlsFiles {
            cert: dir.path().join("missing.pem"),
            key: key.clone(),
        },
        TlsFiles {
            cert: key.clone(),
            key: key.clone(),
        },
        TlsFiles {
            cert: cert.clone(),
            key: cert.clone(),
        },
    ] {
        let err = Emulator::start(EmulatorConfig {
            tls: Some(files.clone()),
            ..fast()
        })
        .await
        .unwrap_err();
        assert!(matches!(err, EmulatorError::Tls { .. }), "{files:?}: {err}");
        assert!(err.to_string().contains("TLS"), "{err}");
    }
}
