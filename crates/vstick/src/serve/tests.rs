use super::*;

fn args(extra: &[&str]) -> ServeArgs {
    use clap::Parser;
    let mut argv = vec!["vstick", "serve"];
    argv.extend(extra);
    match crate::cli::Cli::parse_from(argv).command {
        crate::cli::Command::Serve(a) => *a,
        _ => unreachable!(),
    }
}

#[test]
fn profile_gives_transport_and_luns_and_the_command_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("stick.toml");
    std::fs::write(
        &profile,
        r#"
usbredir = "127.0.0.1:4000"
control = "/run/vstick.sock"
snapshot = true

[[lun]]
type = "cdrom"
path = "install.iso"

[[lun]]
type = "disk"
path = "/images/stick.raw"
"#,
    )
    .unwrap();
    let p = profile.to_str().unwrap();
    let extra = LunSpec::Disk { path: "extra.raw".into(), read_only: true };
    let plan = ServePlan::new(&args(&["--config", p]), vec![extra.clone()]).unwrap();
    assert_eq!(
        plan.transport,
        Transport::UsbredirListen(RedirSocket::Tcp("127.0.0.1:4000".parse().unwrap()))
    );
    assert_eq!(
        plan.luns,
        vec![
            LunSpec::Cdrom { path: dir.path().join("install.iso") },
            LunSpec::Disk { path: "/images/stick.raw".into(), read_only: false },
            extra,
        ]
    );
    assert_eq!(plan.control, Some(PathBuf::from("/run/vstick.sock")));
    assert_eq!(plan.snapshot, Some(Snapshot { keep: None }));
    let plan = ServePlan::new(&args(&["--config", p, "--usbip", "0.0.0.0"]), vec![]).unwrap();
    assert_eq!(plan.transport, Transport::Usbip("0.0.0.0:3240".parse().unwrap()));

    std::fs::write(&profile, "usbredir = \"4000\"\n[[lun]]\ntype = \"floppy\"\npath = \"x\"\n").unwrap();
    let err = ServePlan::new(&args(&["--config", p]), vec![]).unwrap_err().to_string();
    assert!(err.contains("unknown LUN type \"floppy\""), "{err}");
    std::fs::write(&profile, "usbredir = \"4000\"\nluns = 3\n").unwrap();
    let err = format!("{:#}", ServePlan::new(&args(&["--config", p]), vec![]).unwrap_err());
    assert!(err.contains("invalid stick profile"), "{err}");
}

#[test]
fn an_explicit_block_size_of_512_wins_over_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("stick.toml");
    std::fs::write(&profile, "usbredir = \"4000\"\nblock_size = 4096\n").unwrap();
    let p = profile.to_str().unwrap();
    let lun = || vec![LunSpec::Disk { path: "d.raw".into(), read_only: false }];
    assert_eq!(ServePlan::new(&args(&["--config", p]), lun()).unwrap().block_size, 4096);
    let plan = ServePlan::new(&args(&["--config", p, "--block-size", "512"]), lun()).unwrap();
    assert_eq!(plan.block_size, 512, "the command line wins, 512 included");
    assert_eq!(ServePlan::new(&args(&["--usbredir", "4000"]), lun()).unwrap().block_size, 512);
}

#[test]
fn local_comes_from_the_flag_or_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("stick.toml");
    std::fs::write(&profile, "local = true\n[[lun]]\ntype = \"cdrom\"\npath = \"a.iso\"\n").unwrap();
    let p = profile.to_str().unwrap();
    assert_eq!(ServePlan::new(&args(&["--config", p]), vec![]).unwrap().transport, Transport::Local);
    let lun = || vec![LunSpec::Cdrom { path: "a.iso".into() }];
    assert_eq!(ServePlan::new(&args(&["--local"]), lun()).unwrap().transport, Transport::Local);
    // The command line's transport replaces the profile's.
    let plan = ServePlan::new(&args(&["--config", p, "--usbip", "3240"]), vec![]).unwrap();
    assert_eq!(plan.transport, Transport::Usbip("127.0.0.1:3240".parse().unwrap()));
    std::fs::write(&profile, "local = true\nusbip = \"3240\"\n").unwrap();
    let err = ServePlan::new(&args(&["--config", p]), lun()).unwrap_err().to_string();
    assert!(err.contains("more than one transport"), "{err}");
    use clap::Parser;
    let both = crate::cli::Cli::try_parse_from(["vstick", "serve", "--local", "--usbip", "3240"]);
    assert!(both.is_err(), "--local and another transport conflict");
}

#[test]
fn gadget_comes_from_the_flag_or_the_profile() {
    let lun = || vec![LunSpec::Cdrom { path: "a.iso".into() }];
    let plan = |argv: &[&str]| ServePlan::new(&args(argv), lun()).map(|p| p.transport);
    assert_eq!(plan(&["--gadget"]).unwrap(), Transport::Gadget(None));
    assert_eq!(plan(&["--gadget", "dummy_udc.1"]).unwrap(), Transport::Gadget(Some("dummy_udc.1".into())));
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("stick.toml");
    let p = profile.to_str().unwrap();
    for (text, want) in
        [("gadget = \"auto\"\n", None), ("gadget = \"fe980000.usb\"\n", Some("fe980000.usb".to_string()))]
    {
        std::fs::write(&profile, text).unwrap();
        assert_eq!(plan(&["--config", p]).unwrap(), Transport::Gadget(want));
    }
    std::fs::write(&profile, "gadget = \"auto\"\nlocal = true\n").unwrap();
    let err = plan(&["--config", p]).unwrap_err().to_string();
    assert!(err.contains("more than one transport"), "{err}");
    use clap::Parser;
    let both = crate::cli::Cli::try_parse_from(["vstick", "serve", "--gadget", "--local"]);
    assert!(both.is_err(), "--gadget and another transport conflict");
}

#[test]
fn addresses_default_to_loopback() {
    assert_eq!(parse_addr("4000", None).unwrap(), "127.0.0.1:4000".parse().unwrap());
    assert_eq!(parse_addr(":4000", None).unwrap(), "127.0.0.1:4000".parse().unwrap());
    assert_eq!(parse_addr("0.0.0.0:1", None).unwrap(), "0.0.0.0:1".parse().unwrap());
    assert_eq!(parse_addr("[::1]:5", None).unwrap(), "[::1]:5".parse().unwrap());
    assert_eq!(parse_addr("10.1.2.3", Some(3240)).unwrap(), "10.1.2.3:3240".parse().unwrap());
    assert!(parse_addr("10.1.2.3", None).is_err());
    assert!(parse_addr("nonsense:port", None).is_err());
}

#[test]
fn usbredir_takes_a_unix_socket_path() {
    let lun = || vec![LunSpec::Cdrom { path: "a.iso".into() }];
    let plan = ServePlan::new(&args(&["--usbredir", "unix:/run/v.sock"]), lun()).unwrap();
    let place = RedirSocket::Unix("/run/v.sock".into());
    assert_eq!(plan.transport, Transport::UsbredirListen(place.clone()));
    assert!(
        attach_instructions(&plan.transport)
            .contains("-chardev socket,id=vstick0,path=/run/v.sock,reconnect=1")
    );
    assert_eq!(place.to_string(), "unix:/run/v.sock");
    let plan = ServePlan::new(&args(&["--usbredir-connect", "unix:q.sock"]), lun()).unwrap();
    assert_eq!(plan.transport, Transport::UsbredirConnect(RedirSocket::Unix("q.sock".into())));
    assert!(attach_instructions(&plan.transport).contains("path=q.sock,server=on,wait=off"));

    let refused = |argv: &[&str]| ServePlan::new(&args(argv), lun()).unwrap_err().to_string();
    assert!(refused(&["--usbredir", "unix:"]).contains("give the socket's path"));
    assert!(refused(&["--usbip", "unix:/run/v.sock"]).contains("USB/IP clients connect over TCP only"));
    let tls = ["--usbredir", "unix:/run/v.sock", "--tls-cert", "c.pem", "--tls-key", "k.pem"];
    assert!(refused(&tls).contains("file permissions"));
}

#[test]
fn identity_from_the_profile_and_the_command_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("stick.toml");
    std::fs::write(
        &profile,
        r#"
usbredir = "4000"
vendor_id = 0x1d6b                # a TOML hex integer
product_id = "0x0104"             # or text, as on the command line
manufacturer = "Profile Inc."
product = "Profile stick"
serial = "AAAABBBBCCCC"
"#,
    )
    .unwrap();
    let p = profile.to_str().unwrap();
    let lun = || vec![LunSpec::Cdrom { path: "a.iso".into() }];
    let plan = ServePlan::new(&args(&["--config", p]), lun()).unwrap();
    let id = plan.identity.identity(|| unreachable!("the profile gives a serial"));
    assert_eq!((id.vendor_id, id.product_id), (0x1d6b, 0x0104));
    assert_eq!((id.manufacturer.as_str(), id.product.as_str()), ("Profile Inc.", "Profile stick"));
    assert_eq!(id.serial, "AAAABBBBCCCC");

    let plan =
        ServePlan::new(&args(&["--config", p, "--product-id", "2", "--serial", "X-1"]), lun()).unwrap();
    let id = plan.identity.identity(|| unreachable!());
    assert_eq!((id.vendor_id, id.product_id, id.serial.as_str()), (0x1d6b, 2, "X-1"));
    assert!(plan.identity.serial_warning().is_some());

    std::fs::write(&profile, "usbredir = \"4000\"\nvendor_id = 0x10000\n").unwrap();
    let err = ServePlan::new(&args(&["--config", p]), lun()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{p}: vendor_id: 65536 is out of range; a USB ID is 16 bits, 0 to 0xffff (65535)")
    );
    std::fs::write(&profile, "usbredir = \"4000\"\nvendor_id = true\n").unwrap();
    let err = format!("{:#}", ServePlan::new(&args(&["--config", p]), lun()).unwrap_err());
    assert!(err.contains("invalid stick profile"), "{err}");
}

#[test]
fn identity_errors_are_one_line_for_every_transport() {
    let lun = || vec![LunSpec::Cdrom { path: "a.iso".into() }];
    let refused = |argv: &[&str]| ServePlan::new(&args(argv), lun()).unwrap_err().to_string();
    for transport in [&["--usbredir", "4000"][..], &["--usbip", "3240"], &["--local"], &["--gadget"]] {
        let mut argv = transport.to_vec();
        argv.extend(["--vendor-id", "0x12345"]);
        assert_eq!(
            refused(&argv),
            "--vendor-id: 0x12345 is out of range; a USB ID is 16 bits, 0 to 0xffff (65535)"
        );
    }
    // configfs counts bytes: 70 × "é" fits a descriptor but not the gadget.
    let wide = "é".repeat(70);
    assert!(ServePlan::new(&args(&["--local", "--manufacturer", &wide]), lun()).is_ok());
    assert_eq!(
        refused(&["--gadget", "--manufacturer", &wide]),
        "--manufacturer: 140 bytes of UTF-8; Linux's gadget configfs takes at most 126 (shorten it)"
    );
}

#[test]
fn build_device_serves_the_given_identity_and_derives_the_lun_serials() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("d.raw");
    std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
    let luns = vec![
        LunSpec::Disk { path: image.clone(), read_only: true },
        LunSpec::Disk { path: image.clone(), read_only: true },
    ];
    let build = |argv: &[&str]| {
        let mut all = vec!["--usbredir", "4000"];
        all.extend(argv);
        let plan = ServePlan::new(&args(&all), luns.clone()).unwrap();
        build_device(&plan.luns, 512, None, Speed::High, &plan.identity).unwrap().0
    };
    let mut device = build(&[
        "--vendor-id",
        "0x1d6b",
        "--product-id",
        "0x0104",
        "--manufacturer",
        "M",
        "--product",
        "P",
        "--serial",
        "0123456789AB",
    ]);
    let id = device.identity();
    assert_eq!((id.vendor_id, id.product_id), (0x1d6b, 0x0104));
    assert_eq!(
        (id.manufacturer.as_str(), id.product.as_str(), id.serial.as_str()),
        ("M", "P", "0123456789AB")
    );
    // Each LUN's unit serial (VPD 80h) is the device's and the LUN number.
    assert_eq!(
        (vpd_serial(&mut device, 0), vpd_serial(&mut device, 1)),
        ("0123456789AB00".into(), "0123456789AB01".into())
    );
    // Without options: the defaults and the serial from the image paths.
    let device = build(&[]);
    assert_eq!(device.identity(), &vstick_usb::Identity::default_for(device_serial(&luns)));
}

/// The unit serial number (INQUIRY VPD page 80h, SPC-4 §7.8.15) of `lun`.
fn vpd_serial(device: &mut MassStorageDevice, lun: u8) -> String {
    let target = device.target_mut();
    let vstick_scsi::DataStage::In(n) = target.begin(lun, &[0x12, 0x01, 0x80, 0x00, 0xff, 0x00]) else {
        panic!("INQUIRY VPD 80h has data");
    };
    let mut page = vec![0u8; n as usize];
    target.data_in(&mut page);
    assert_eq!(target.end(), vstick_scsi::Status::Good);
    String::from_utf8_lossy(&page[4..]).into_owned()
}
