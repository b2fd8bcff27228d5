use super::*;

fn cli(argv: &[&str]) -> IdentityArgs {
    use clap::Parser;
    let mut all = vec!["vstick", "serve"];
    all.extend(argv);
    match crate::cli::Cli::parse_from(all).command {
        crate::cli::Command::Serve(a) => a.identity,
        _ => unreachable!(),
    }
}

fn resolve(argv: &[&str]) -> anyhow::Result<IdentitySpec> {
    IdentitySpec::resolve(&cli(argv), &ProfileIdentity::default(), None, false)
}

fn error(argv: &[&str]) -> String {
    resolve(argv).unwrap_err().to_string()
}

#[test]
fn nothing_given_keeps_the_defaults() {
    let spec = resolve(&[]).unwrap();
    assert_eq!(spec, IdentitySpec::default());
    let id = spec.identity(|| "0123456789ABCDEF".into());
    assert_eq!(id, Identity::default_for("0123456789ABCDEF".into()));
    assert_eq!((id.vendor_id, id.product_id), (0x1209, 0x0001));
    assert_eq!((id.manufacturer.as_str(), id.product.as_str()), ("vstick", "vstick USB stick"));
    assert_eq!(spec.serial_warning(), None, "the derived serial is not the user's");
}

#[test]
fn every_option_reaches_the_identity() {
    let spec = resolve(&[
        "--vendor-id",
        "0x1D6b",
        "--product-id",
        "260",
        "--manufacturer",
        "ACME Corp.",
        "--product",
        "Stick ✓ 日本",
        "--serial",
        "0123456789AB",
    ])
    .unwrap();
    let id = spec.identity(|| panic!("a serial was given"));
    assert_eq!((id.vendor_id, id.product_id, id.bcd_device), (0x1d6b, 0x0104, 0x0100));
    assert_eq!(id.manufacturer, "ACME Corp.");
    assert_eq!(id.product, "Stick ✓ 日本");
    assert_eq!(id.serial, "0123456789AB");
    // Each alone leaves the others at their defaults.
    let id = resolve(&["--product-id", "0X00ff"]).unwrap().identity(|| "S".repeat(12));
    assert_eq!((id.vendor_id, id.product_id, id.product.as_str()), (0x1209, 0x00ff, "vstick USB stick"));
}

#[test]
fn ids_in_hex_and_decimal_within_16_bits() {
    let vid = |v: &str| resolve(&["--vendor-id", v]).map(|s| s.vendor_id.unwrap());
    assert_eq!(vid("0").unwrap(), 0);
    assert_eq!(vid("65535").unwrap(), 0xffff);
    assert_eq!(vid("0xffff").unwrap(), 0xffff);
    assert_eq!(vid("0x0001").unwrap(), 1);
    assert_eq!(vid(" 7531 ").unwrap(), 0x1d6b);
    assert_eq!(
        error(&["--vendor-id", "0x10000"]),
        "--vendor-id: 0x10000 is out of range; a USB ID is 16 bits, 0 to 0xffff (65535)"
    );
    assert_eq!(
        error(&["--product-id", "65536"]),
        "--product-id: 65536 is out of range; a USB ID is 16 bits, 0 to 0xffff (65535)"
    );
    assert_eq!(
        error(&["--product-id=-1"]),
        "--product-id: -1 is out of range; a USB ID is 16 bits, 0 to 0xffff (65535)"
    );
    assert_eq!(
        error(&["--vendor-id", "99999999999999999999999999999999999999999999"]),
        "--vendor-id: 99999999999999999999999999999999999999999999 is out of range; a USB ID is 16 bits, 0 to 0xffff (65535)"
    );
    for bad in ["1d6b", "0x", "0x-1", "0x+1", "12ab", "", "ten", "0b101"] {
        assert_eq!(
            error(&["--vendor-id", bad]),
            format!("--vendor-id: {bad:?} is not a number; give hex (0x1d6b) or decimal (7531)")
        );
    }
}

#[test]
fn strings_are_non_empty_printable_and_fit_a_descriptor() {
    assert_eq!(
        error(&["--serial", ""]),
        "--serial: empty; give at least one character, or leave it out for the default"
    );
    assert_eq!(
        error(&["--product", "two\nlines"]),
        "--product: contains the control character U+000A; USB strings must be printable"
    );
    assert_eq!(
        error(&["--manufacturer", "nul\0"]),
        "--manufacturer: contains the control character U+0000; USB strings must be printable"
    );
    // 126 UTF-16 code units fit; a character outside the BMP takes two.
    let fits = "x".repeat(126);
    assert_eq!(resolve(&["--product", &fits]).unwrap().product.as_deref(), Some(fits.as_str()));
    assert_eq!(
        error(&["--product", &"x".repeat(127)]),
        "--product: 127 UTF-16 code units; a USB string descriptor holds at most 126 (shorten it)"
    );
    let astral = format!("{}🦀", "x".repeat(125));
    assert_eq!(
        error(&["--manufacturer", &astral]),
        "--manufacturer: 127 UTF-16 code units; a USB string descriptor holds at most 126 (shorten it)"
    );
}

#[test]
fn the_gadget_counts_configfs_bytes() {
    // 100 characters, 200 bytes of UTF-8: a descriptor holds them, configfs does not.
    let wide = "é".repeat(100);
    let args = cli(&["--product", &wide]);
    let none = ProfileIdentity::default();
    assert!(IdentitySpec::resolve(&args, &none, None, false).is_ok());
    assert_eq!(
        IdentitySpec::resolve(&args, &none, None, true).unwrap_err().to_string(),
        "--product: 200 bytes of UTF-8; Linux's gadget configfs takes at most 126 (shorten it)"
    );
    let ascii = cli(&["--serial", &"A".repeat(126)]);
    assert!(IdentitySpec::resolve(&ascii, &none, None, true).is_ok());
}

#[test]
fn the_command_line_wins_over_the_profile_and_errors_name_the_source() {
    let profile = ProfileIdentity {
        vendor_id: Some(IdValue::Number(0x1d6b)),
        product_id: Some(IdValue::Text("0x0104".into())),
        manufacturer: Some("Profile Inc.".into()),
        product: Some("Profile stick".into()),
        serial: Some("AAAABBBBCCCC".into()),
    };
    let spec = IdentitySpec::resolve(&cli(&[]), &profile, Some("stick.toml"), false).unwrap();
    assert_eq!(
        spec,
        IdentitySpec {
            vendor_id: Some(0x1d6b),
            product_id: Some(0x0104),
            manufacturer: Some("Profile Inc.".into()),
            product: Some("Profile stick".into()),
            serial: Some("AAAABBBBCCCC".into()),
        }
    );
    let args = cli(&["--vendor-id", "0x0781", "--serial", "123456789012", "--product", "CLI stick"]);
    let spec = IdentitySpec::resolve(&args, &profile, Some("stick.toml"), false).unwrap();
    assert_eq!(spec.vendor_id, Some(0x0781));
    assert_eq!(spec.product_id, Some(0x0104));
    assert_eq!(spec.manufacturer.as_deref(), Some("Profile Inc."));
    assert_eq!(spec.product.as_deref(), Some("CLI stick"));
    assert_eq!(spec.serial.as_deref(), Some("123456789012"));

    let bad = ProfileIdentity { vendor_id: Some(IdValue::Number(70000)), ..profile.clone() };
    assert_eq!(
        IdentitySpec::resolve(&cli(&[]), &bad, Some("stick.toml"), false).unwrap_err().to_string(),
        "stick.toml: vendor_id: 70000 is out of range; a USB ID is 16 bits, 0 to 0xffff (65535)"
    );
    // A valid command-line value replaces a bad profile value: the profile's is not used.
    assert!(IdentitySpec::resolve(&cli(&["--vendor-id", "1"]), &bad, Some("stick.toml"), false).is_ok());
    let bad = ProfileIdentity { serial: Some(String::new()), ..profile };
    assert_eq!(
        IdentitySpec::resolve(&cli(&[]), &bad, Some("stick.toml"), false).unwrap_err().to_string(),
        "stick.toml: serial: empty; give at least one character, or leave it out for the default"
    );
}

#[test]
fn serials_that_bot_would_not_accept_are_served_with_a_warning() {
    let warning = |serial: &str| resolve(&["--serial", serial]).unwrap().serial_warning();
    assert_eq!(warning("0123456789AB"), None);
    assert_eq!(warning("0123456789ABCDEF0123"), None);
    assert_eq!(
        warning("AA0123").as_deref(),
        Some(
            "serial \"AA0123\" is not a BOT serial number (BOT 1.0 §4.1.1: at least 12 characters of \
             0-9 and A-F); served as given, but Linux and Windows may not treat it as a conformant serial"
        )
    );
    assert!(warning("0123456789ab").is_some(), "lower-case hex is not BOT's");
    assert!(warning("4C530001230512345678-stick").is_some());
}
