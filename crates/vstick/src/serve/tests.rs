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
