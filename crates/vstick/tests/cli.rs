//! The `vstick` binary as users meet it: one-line errors for bad input, nothing
//! created or modified, and the control socket of a running server.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn vstick() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vstick"))
}

fn run(args: &[&str]) -> Output {
    vstick().args(args).output().unwrap()
}

/// Exit status non-zero, stderr exactly one line starting with "vstick:" and containing `needle`.
fn assert_one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr:?}");
    assert!(lines[0].starts_with("vstick: "), "{stderr:?}");
    assert!(lines[0].contains(needle), "{needle:?} not in {stderr:?}");
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn bad_image_paths_fail_with_one_line_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("empty.raw"), b"").unwrap();
    std::fs::create_dir(d.join("adir")).unwrap();
    let good = d.join("good.raw");
    std::fs::File::create(&good).unwrap().set_len(1 << 20).unwrap();
    let before = listing(d);
    let p = |n: &str| d.join(n).display().to_string();
    for (args, needle) in [
        (vec!["--disk", &p("missing.raw")], "missing.raw: no such file"),
        (vec!["--disk", &p("adir")], "adir: is a directory"),
        (vec!["--cdrom", &p("empty.raw")], "empty.raw: the image is empty"),
        // All or nothing: a good image before a bad one is not served either.
        (vec!["--disk", &p("good.raw"), "--disk-ro", &p("missing.raw")], "LUN 1"),
    ] {
        let mut full = vec!["serve", "--usbredir", "127.0.0.1:0"];
        full.extend(args.iter().map(|s| &**s));
        assert_one_line_error(&run(&full), needle);
    }
    assert_eq!(listing(d), before, "nothing created");
    assert_eq!(std::fs::metadata(&good).unwrap().len(), 1 << 20);
}

#[test]
fn usage_errors() {
    let out = run(&["serve", "--disk", "x.raw"]);
    assert_one_line_error(&out, "no transport");
    let out = run(&["serve", "--usbredir", "127.0.0.1:0"]);
    assert_one_line_error(&out, "nothing to serve");
    let out = run(&["serve", "--usbredir", "nowhere:port", "--disk", "x"]);
    assert!(!out.status.success());
    let out = run(&["ctl", "/nonexistent/ctl.sock", "status"]);
    assert_one_line_error(&out, "cannot connect");
}

struct Server {
    child: Child,
    socket: PathBuf,
}

impl Server {
    fn start(dir: &Path, images: &[&str]) -> Server {
        let socket = dir.join("ctl.sock");
        let mut cmd = vstick();
        cmd.args(["serve", "--usbredir", "127.0.0.1:0", "--control"]).arg(&socket);
        cmd.args(images);
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        // The first stdout line says the server is listening.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.contains("usbredir server on"), "{line}");
        let start = Instant::now();
        while !socket.exists() {
            assert!(start.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, socket }
    }

    fn ctl(&self, args: &[&str]) -> Output {
        vstick().arg("ctl").arg(&self.socket).args(args).output().unwrap()
    }

    fn raw(&self, line: &str) -> String {
        let mut s = UnixStream::connect(&self.socket).unwrap();
        s.write_all(line.as_bytes()).unwrap();
        let mut reply = String::new();
        BufReader::new(s).read_line(&mut reply).unwrap();
        reply
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        self.child.wait().unwrap()
    }
}

fn iso(dir: &Path, name: &str) -> String {
    // Enough for the device: 2048-byte blocks with an ISO 9660 descriptor at sector 16.
    let mut bytes = vec![0u8; 64 * 2048];
    bytes[16 * 2048..16 * 2048 + 6].copy_from_slice(b"\x01CD001");
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

#[test]
fn control_socket_status_eject_insert_and_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let disk = d.join("disk.raw");
    std::fs::File::create(&disk).unwrap().set_len(4 << 20).unwrap();
    let (a, b) = (iso(d, "a.iso"), iso(d, "b.iso"));
    let server = Server::start(d, &["--disk", disk.to_str().unwrap(), "--cdrom", &a]);

    let out = server.ctl(&["status"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("disk") && text.contains("cdrom") && text.contains("a.iso"), "{text}");

    // Bad requests change nothing and the server keeps serving.
    assert_one_line_error(&server.ctl(&["eject", "7"]), "LUN 7 does not exist");
    assert_one_line_error(
        &server.ctl(&["insert", "1", &d.join("nope.iso").display().to_string()]),
        "no such file",
    );
    assert_one_line_error(&server.ctl(&["insert", "1", &d.display().to_string()]), "is a directory");
    assert_one_line_error(&server.ctl(&["insert", "0", &b]), "insert it into a --cdrom LUN");
    let reply = server.raw("this is not json\n");
    assert!(reply.contains("\"ok\":false") && reply.contains("malformed request"), "{reply}");
    let reply = server.raw("{\"cmd\":\"eject\",\"lun\":1,\"extra\":true}\n");
    assert!(reply.contains("\"ok\":false"), "{reply}");
    let status = String::from_utf8_lossy(&server.ctl(&["status"]).stdout).to_string();
    assert!(status.contains("a.iso"), "unchanged after bad requests: {status}");

    // A second controller while one is connected is refused.
    let first = UnixStream::connect(&server.socket).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_one_line_error(&server.ctl(&["status"]), "another controller");
    drop(first);
    std::thread::sleep(Duration::from_millis(100));

    assert!(server.ctl(&["eject", "1"]).status.success());
    let status = String::from_utf8_lossy(&server.ctl(&["status"]).stdout).to_string();
    assert!(!status.contains("a.iso"), "{status}");
    assert!(server.ctl(&["insert", "1", &b]).status.success());
    let status = String::from_utf8_lossy(&server.ctl(&["status"]).stdout).to_string();
    assert!(status.contains("b.iso"), "{status}");

    // The socket path is taken while the server runs.
    let out = vstick()
        .args(["serve", "--usbredir", "127.0.0.1:0", "--cdrom", &a, "--control"])
        .arg(&server.socket)
        .output()
        .unwrap();
    assert_one_line_error(&out, "already listening");

    let socket = server.socket.clone();
    let exit = server.terminate();
    assert!(exit.success(), "SIGTERM exits 0: {exit:?}");
    assert!(!socket.exists(), "control socket removed on exit");
}

#[test]
fn usbredir_on_a_unix_socket() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let a = iso(dir.path(), "a.iso");
    let path = dir.path().join("redir.sock");
    let place = format!("unix:{}", path.display());

    // A path that is not a socket is left alone.
    std::fs::write(&path, b"precious").unwrap();
    assert_one_line_error(&run(&["serve", "--usbredir", &place, "--cdrom", &a]), "is not a socket");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    std::fs::remove_file(&path).unwrap();

    let mut child =
        vstick().args(["serve", "--usbredir", &place, "--cdrom", &a]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains(&format!("usbredir server on {place}")), "{line}");

    // QEMU's side of the socket: our hello comes first.
    let mut guest = UnixStream::connect(&path).unwrap();
    guest.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hello = [0u8; 80];
    guest.read_exact(&mut hello).unwrap();
    assert_eq!(&hello[..8], &[0, 0, 0, 0, 68, 0, 0, 0]);

    // The path belongs to the running server.
    assert_one_line_error(&run(&["serve", "--usbredir", &place, "--cdrom", &a]), "already listening");

    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(child.wait().unwrap().success());
    assert!(!path.exists(), "usbredir socket removed on exit");
}

/// The help text `vstick serve --help` prints under `option` (up to the next option).
fn option_help(help: &str, option: &str) -> String {
    let mut lines = help.lines().skip_while(|l| !l.trim_start().starts_with(option));
    let first = lines.next().unwrap_or_else(|| panic!("{option} not in help:\n{help}"));
    let rest: Vec<&str> = lines.take_while(|l| !l.trim_start().starts_with('-')).collect();
    format!("{first}\n{}", rest.join("\n"))
}

#[test]
fn serve_help_puts_each_option_text_under_its_option() {
    let out = run(&["serve", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let tls = option_help(&help, "--tls-cert");
    assert!(tls.contains("certificate chain"), "{tls}");
    let speed = option_help(&help, "--usb-speed");
    assert!(speed.contains("USB speed presented"), "{speed}");
    assert!(!speed.contains("TLS"), "--tls-cert's text under --usb-speed: {speed}");
}

#[test]
fn insert_under_snapshot_opens_the_new_image_read_only_beneath_an_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (first, second) = (d.join("first.raw"), d.join("second.raw"));
    for p in [&first, &second] {
        std::fs::File::create(p).unwrap().set_len(1 << 20).unwrap();
    }
    let server = Server::start(d, &["--snapshot", "--disk", first.to_str().unwrap()]);
    let out = server.ctl(&["insert", "0", second.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = String::from_utf8_lossy(&server.ctl(&["status"]).stdout).to_string();
    assert!(status.contains("second.raw"), "{status}");
    // The guest can write (into the overlay): the disk is not read-only...
    let row = status.lines().find(|l| l.contains("second.raw")).unwrap();
    assert_eq!(row.split_whitespace().nth(3), Some("no"), "RO column: {status}");
    // ...but the image itself is only read: a writer would hold it exclusively.
    let f = std::fs::File::open(&second).unwrap();
    assert!(f.try_lock_shared().is_ok(), "the inserted image is held for writing, not as a snapshot base");
    drop(f);
    assert!(server.terminate().success());
}

#[test]
fn snapshot_keep_that_cannot_be_written_fails_the_exit_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let disk = d.join("disk.raw");
    std::fs::File::create(&disk).unwrap().set_len(1 << 20).unwrap();
    let kept = d.join("kept.raw");
    // Taken before start-up: refused at once, while nothing has been written.
    std::fs::write(&kept, b"taken").unwrap();
    let args = ["serve", "--usbredir", "127.0.0.1:0", "--disk", disk.to_str().unwrap(), "--snapshot-keep"];
    assert_one_line_error(&vstick().args(args).arg(&kept).output().unwrap(), "never overwrites");
    std::fs::remove_file(&kept).unwrap();
    let mut child = vstick()
        .args(["serve", "--usbredir", "127.0.0.1:0", "--disk", disk.to_str().unwrap(), "--snapshot-keep"])
        .arg(&kept)
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("usbredir server on"), "{line}");
    // Something takes the path while serving: the merge must not overwrite it.
    std::fs::write(&kept, b"someone else's").unwrap();
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_one_line_error(&out, "kept.raw");
    assert_eq!(std::fs::read(&kept).unwrap(), b"someone else's");
}
