//! The link state machine against a scripted server with a test-only
//! RSA-1024 key (made with openssl for these tests).

use super::*;
use rsa::pkcs8::DecodePrivateKey;

const KEY_DER: [u8; 162] = [
    0x30, 0x81, 0x9f, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05,
    0x00, 0x03, 0x81, 0x8d, 0x00, 0x30, 0x81, 0x89, 0x02, 0x81, 0x81, 0x00, 0xca, 0x30, 0x8b, 0xae, 0xe8,
    0x4f, 0x76, 0x17, 0x4a, 0x87, 0xa9, 0x5c, 0xf5, 0xee, 0x71, 0xc8, 0x7b, 0x2e, 0x8c, 0x8e, 0x43, 0x19,
    0x42, 0xb1, 0xfd, 0x8a, 0x48, 0xbe, 0x3b, 0x49, 0x3b, 0xbf, 0xf9, 0xcf, 0x54, 0x5d, 0x26, 0xe5, 0x20,
    0xc3, 0xdb, 0xb3, 0x09, 0xc2, 0xa1, 0x3d, 0x3e, 0x20, 0x74, 0xba, 0xb3, 0x04, 0x5f, 0x49, 0xb6, 0xc7,
    0x96, 0x5b, 0xb5, 0xdc, 0x2f, 0x2d, 0xfe, 0xae, 0x4d, 0x00, 0x4a, 0x23, 0xdf, 0x82, 0x10, 0xdd, 0x73,
    0xfc, 0xc7, 0x61, 0x32, 0xd7, 0x66, 0x69, 0x6f, 0x5a, 0x39, 0x09, 0xd7, 0x30, 0xf5, 0xa4, 0x29, 0x95,
    0x4b, 0x77, 0x59, 0x15, 0x72, 0x84, 0xc9, 0xc3, 0x08, 0xb3, 0xdc, 0x79, 0x4c, 0x5d, 0x76, 0xe4, 0x72,
    0x79, 0x15, 0x09, 0xad, 0x65, 0x48, 0x3d, 0x4c, 0xef, 0x07, 0x4a, 0x38, 0x00, 0xe8, 0x51, 0xde, 0x16,
    0x56, 0x53, 0x6f, 0x45, 0x02, 0x03, 0x01, 0x00, 0x01,
];
const PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIICdQIBADANBgkqhkiG9w0BAQEFAASCAl8wggJbAgEAAoGBAMowi67oT3YXSoep\nXPXucch7LoyOQxlCsf2KSL47STu/+c9UXSblIMPbswnCoT0+IHS6swRfSbbHllu1\n3C8t/q5NAEoj34IQ3XP8x2Ey12Zpb1o5Cdcw9aQplUt3WRVyhMnDCLPceUxdduRy\neRUJrWVIPUzvB0o4AOhR3hZWU29FAgMBAAECgYAHxLG5OKfE68QrTjCKKm0ovMLf\nF6AwWkWobiW5WWHI7+lTM/SYR/loTQql91pmlfp9QacbJeYZJbX7NBOPpH7Cdh4o\nnPyKwdNJmZKA62ODykKmCuMp91FNW3eHyZsHvu13jLMC/oRSCeV32mCO3tAaNmLo\nbMC1z4TjN4ehBt3KiQJBAPWuiH2j68s+43Xtoka4N6/hyPLO3INVSYzGisDjVTWg\nztN0IAeYZRlNOjH6K2FLtc2wXt6PvpHsAKDKo8ypJKsCQQDSrmdAcoOHFstoIuWR\nL7x5DQdBomP1EltZAameyjOInI+OvEJXfWplW03z/+d8KKWrPLur51Kw/aZg4CZw\nklvPAkBOdhj9Fxa86C64gNXsg/S05QTKFqpx/xDoNpgllfSmld63xURdaJwRAort\nXxnvjsBXGlaR+ZJBBAAHWfAJ8pLVAkBkGIpj20RUTWcsvc+2MCjqll8JNv8os6UE\n375X/BeJ42BtX1JhwOto5n1d3Qp9Oc6kUcGUhd4KyyheRIDe4RqPAkBm4yycRc2G\n1BVvUzhpbmemp35ouHnZAkXlWk1Q6p1h7dOGPzy7rhsWSGNv1cYD061HLlnrMNu8\nZj76LWSfaLB+\n-----END PRIVATE KEY-----\n";

/// A server's link header + reply: `error`, our test key, `common` and `channel` caps.
fn reply(error: u32, common: u32, channel: u32) -> Vec<u8> {
    let mut body = error.to_le_bytes().to_vec();
    body.extend_from_slice(&KEY_DER);
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&178u32.to_le_bytes());
    body.extend_from_slice(&common.to_le_bytes());
    body.extend_from_slice(&channel.to_le_bytes());
    let mut v = b"REDQ".to_vec();
    v.extend_from_slice(&2u32.to_le_bytes());
    v.extend_from_slice(&2u32.to_le_bytes());
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend_from_slice(&body);
    v
}

fn usbredir_request() -> LinkRequest {
    LinkRequest { connection_id: 0x1234_5678, channel_type: 9, channel_id: 1, channel_caps: 1 }
}

fn decrypt(ticket: &[u8]) -> Vec<u8> {
    let key = rsa::PrivateKey::from_pkcs8_pem(PRIVATE_PEM).unwrap();
    key.oaep_decrypt::<sha1::Sha1>(ticket).unwrap()
}

#[test]
fn the_link_message_is_byte_exact() {
    let mut link = Link::new(&usbredir_request(), b"").unwrap();
    let out = link.take_output();
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &b"REDQ"[..], &[2, 0, 0, 0], &[2, 0, 0, 0], &[26, 0, 0, 0], // header, 26-byte body
        &[0x78, 0x56, 0x34, 0x12],  // connection_id
        &[9, 1],                    // usbredir channel 1
        &[1, 0, 0, 0], &[1, 0, 0, 0], &[18, 0, 0, 0], // one common, one channel cap word at 18
        &[0x0b, 0, 0, 0],           // AUTH_SELECTION | AUTH_SPICE | MINI_HEADER
        &[1, 0, 0, 0],              // LZ4
    ].concat();
    assert_eq!(out, expected);
    assert!(link.take_output().is_empty());
}

#[test]
fn the_ticket_decrypts_to_the_password_and_its_nul() {
    let mut link = Link::new(&usbredir_request(), b"s3cret").unwrap();
    link.take_output();
    let r = reply(0, 0x0b, 1);
    assert_eq!(link.receive(&r).unwrap(), r.len());
    let out = link.take_output();
    assert_eq!(out.len(), 4 + 128);
    assert_eq!(&out[..4], &1u32.to_le_bytes(), "auth mechanism: SPICE ticket");
    assert_eq!(decrypt(&out[4..]), b"s3cret\0");
    assert!(link.linked().is_none());
    // The result, then the channel's first message in the same read.
    let mut tail = 0u32.to_le_bytes().to_vec();
    tail.extend_from_slice(&[0x65, 0, 3, 0, 0, 0, 1, 2, 3]);
    assert_eq!(link.receive(&tail).unwrap(), 4);
    let linked = link.linked().unwrap();
    assert_eq!(linked.header, HeaderKind::Mini);
    assert!(linked.has_channel_cap(SPICEVMC_CAP_LZ4));
}

#[test]
fn without_auth_selection_only_the_ticket_goes_and_headers_are_full() {
    let mut link = Link::new(&usbredir_request(), b"").unwrap();
    link.take_output();
    link.receive(&reply(0, 1 << common_cap::AUTH_SPICE, 0)).unwrap();
    let out = link.take_output();
    assert_eq!(out.len(), 128);
    assert_eq!(decrypt(&out), b"\0");
    link.receive(&[0, 0, 0, 0]).unwrap();
    assert_eq!(link.linked().unwrap().header, HeaderKind::Full);
    assert!(!link.linked().unwrap().has_channel_cap(SPICEVMC_CAP_LZ4));
}

#[test]
fn byte_by_byte_arrival_links_the_same() {
    let mut link = Link::new(&usbredir_request(), b"pw").unwrap();
    let mut all = reply(0, 0x0b, 1);
    all.extend_from_slice(&[0, 0, 0, 0]);
    for b in &all {
        assert_eq!(link.receive(std::slice::from_ref(b)).unwrap(), 1);
    }
    assert!(link.linked().is_some());
    assert_eq!(link.receive(&[1, 2, 3]).unwrap(), 0, "bytes after the link are not the link's");
}

#[test]
fn refusals_name_the_reason() {
    let mut link = Link::new(&usbredir_request(), b"wrong").unwrap();
    link.receive(&reply(0, 0x0b, 0)).unwrap();
    let err = link.receive(&7u32.to_le_bytes()).unwrap_err();
    assert_eq!(err, LinkError::Refused(LinkErrorCode::PERMISSION_DENIED));
    assert!(err.to_string().contains("permission denied"), "{err}");

    let mut link = Link::new(&usbredir_request(), b"").unwrap();
    let err = link.receive(&reply(5, 0, 0)).unwrap_err();
    assert_eq!(err, LinkError::Refused(LinkErrorCode::NEED_SECURED));

    let mut link = Link::new(&usbredir_request(), b"").unwrap();
    assert_eq!(
        link.receive(&reply(0, 1 << common_cap::AUTH_SELECTION | 1 << common_cap::AUTH_SASL, 0)),
        Err(LinkError::SaslOnly)
    );

    assert_eq!(Link::new(&usbredir_request(), &[b'x'; 61]).err(), Some(LinkError::PasswordTooLong));
}

#[test]
fn a_tls_alert_is_not_a_spice_server() {
    let mut link = Link::new(&usbredir_request(), b"").unwrap();
    // A TLS alert record, as a TLS port answers our plain "REDQ".
    let err = link.receive(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x32]).unwrap_err();
    assert!(matches!(err, LinkError::NotSpice(_)), "{err}");
    assert!(err.to_string().contains("TLS"), "{err}");
    let link = Link::new(&usbredir_request(), b"").unwrap();
    assert!(matches!(link.closed(), LinkError::NotSpice(_)));
}

#[test]
fn malformed_replies_are_errors() {
    let mut big = reply(0, 0x0b, 0);
    big[12..16].copy_from_slice(&4097u32.to_le_bytes());
    assert!(matches!(
        Link::new(&usbredir_request(), b"").unwrap().receive(&big),
        Err(LinkError::Malformed(_))
    ));
    let mut v3 = reply(0, 0x0b, 0);
    v3[4] = 3;
    assert_eq!(Link::new(&usbredir_request(), b"").unwrap().receive(&v3), Err(LinkError::Version(3, 2)));
    let mut caps = reply(0, 0x0b, 0);
    caps[16 + 166..16 + 170].copy_from_slice(&1000u32.to_le_bytes());
    assert!(matches!(
        Link::new(&usbredir_request(), b"").unwrap().receive(&caps),
        Err(LinkError::Malformed(_))
    ));
    let mut key = reply(0, 0x0b, 0);
    key[16 + 10] ^= 0xff;
    assert!(matches!(Link::new(&usbredir_request(), b"").unwrap().receive(&key), Err(LinkError::Crypto(_))));
}

proptest::proptest! {
    #[test]
    fn the_link_is_total(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        let mut link = Link::new(&usbredir_request(), b"").unwrap();
        let _ = link.receive(&bytes);
        let mut good = reply(0, 0x0b, 1);
        good.extend_from_slice(&bytes);
        let mut link = Link::new(&usbredir_request(), b"").unwrap();
        let _ = link.receive(&good);
    }
}
