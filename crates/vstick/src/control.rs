//! The control socket (`serve --control SOCKET`) and its client (`vstick ctl`).
//!
//! Protocol: one JSON object per line each way, one request → one response.
//! `{"cmd":"status"}`, `{"cmd":"eject","lun":1,"force":false}`,
//! `{"cmd":"insert","lun":1,"path":"/images/x.iso","force":false}` →
//! `{"ok":true,...}` or `{"ok":false,"error":"..."}`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use vstick_scsi::{LunKind, LunStatus};
use vstick_usb::MassStorageDevice;

use crate::cli::{CtlArgs, CtlRequest};
use crate::serve::LunSpec;

/// Longest request line accepted; anything longer closes the connection.
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// How long a new controller waits for the previous one to go away.
const CONTROLLER_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    Status {},
    Eject {
        lun: u8,
        #[serde(default)]
        force: bool,
    },
    Insert {
        lun: u8,
        path: PathBuf,
        #[serde(default)]
        force: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LunReport {
    pub lun: u8,
    #[serde(rename = "type")]
    pub kind: String,
    pub image: Option<String>,
    pub read_only: bool,
    pub present: bool,
    pub locked: bool,
    pub block_size: u32,
    pub blocks: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

impl From<LunStatus> for LunReport {
    fn from(s: LunStatus) -> Self {
        Self {
            lun: s.lun,
            kind: match s.kind {
                LunKind::Disk => "disk",
                LunKind::Optical => "cdrom",
            }
            .to_string(),
            present: s.medium.is_some(),
            image: s.medium,
            read_only: s.read_only,
            locked: s.locked,
            block_size: s.block_size,
            blocks: s.blocks,
            bytes_read: s.bytes_read,
            bytes_written: s.bytes_written,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub luns: Option<Vec<LunReport>>,
}

impl Response {
    fn ok(message: String) -> Self {
        Self { ok: true, message: Some(message), ..Self::default() }
    }
    fn err(error: impl std::fmt::Display) -> Self {
        Self { ok: false, error: Some(error.to_string()), ..Self::default() }
    }
}

/// What the control socket acts on.
pub struct Controlled {
    pub device: Arc<Mutex<MassStorageDevice>>,
    pub luns: Vec<LunSpec>,
    pub block_size: u32,
}

impl Controlled {
    fn device(&self) -> std::sync::MutexGuard<'_, MassStorageDevice> {
        self.device.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Carries out one request. Errors leave every LUN as it was.
    pub fn handle(&self, req: Request) -> Response {
        match req {
            Request::Status {} => {
                let luns = self.device().target().status().into_iter().map(LunReport::from).collect();
                Response { ok: true, luns: Some(luns), ..Response::default() }
            }
            Request::Eject { lun, force } => match self.device().target_mut().eject(lun, force) {
                Ok(()) => Response::ok(format!("LUN {lun}: medium ejected")),
                Err(e) => Response::err(e),
            },
            Request::Insert { lun, path, force } => self.insert(lun, &path, force),
        }
    }

    fn insert(&self, lun: u8, path: &Path, force: bool) -> Response {
        let Some(spec) = self.luns.get(usize::from(lun)) else {
            return Response::err(format!(
                "LUN {lun} does not exist (this device has {} LUNs, numbered from 0)",
                self.luns.len()
            ));
        };
        let new_spec = match spec {
            LunSpec::Disk { read_only, .. } => {
                LunSpec::Disk { path: path.to_path_buf(), read_only: *read_only }
            }
            LunSpec::Cdrom { .. } => LunSpec::Cdrom { path: path.to_path_buf() },
            LunSpec::SnapshotDisk { .. } => LunSpec::SnapshotDisk { path: path.to_path_buf() },
        };
        // Open before taking the device lock: the file may be slow to open, and a
        // refused open must not disturb the medium in the drive.
        let medium = match new_spec.open(self.block_size) {
            Ok(m) => m,
            Err(e) => return Response::err(e),
        };
        if spec.kind() == LunKind::Disk && looks_like_plain_iso(path) {
            return Response::err(format!(
                "{}: an ISO 9660 image without a partition table cannot go into disk LUN {lun}; \
                 insert it into a --cdrom LUN",
                path.display()
            ));
        }
        // The target refuses a locked swap unless forced (MediaError::SwapLocked).
        match self.device().target_mut().insert_with_force(lun, medium, force) {
            Ok(()) => Response::ok(format!(
                "LUN {lun}: inserted {}{}",
                path.display(),
                if matches!(new_spec, LunSpec::SnapshotDisk { .. }) {
                    " (snapshot: writes go to an overlay, discarded on exit)"
                } else {
                    ""
                }
            )),
            Err(e) => Response::err(e),
        }
    }
}

/// An ISO 9660 volume descriptor at sector 16 and no MBR boot signature: a CD image, not a disk.
fn looks_like_plain_iso(path: &Path) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(f) = std::fs::File::open(path) else { return false };
    let (mut mbr, mut vd) = ([0u8; 2], [0u8; 6]);
    let has_mbr = f.read_exact_at(&mut mbr, 510).is_ok() && mbr == [0x55, 0xAA];
    let has_iso = f.read_exact_at(&mut vd, 32768).is_ok() && &vd[1..6] == b"CD001";
    has_iso && !has_mbr
}

/// Binds the control socket (owner-only: it can eject and swap media):
/// refuses a path a live server answers on, replaces a stale one.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    let listener = crate::socket_file::bind(path, "control socket", "--control")?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("{}: cannot restrict permissions", path.display()))?;
    Ok(listener)
}

/// Serves the control socket until the task is dropped. One controller at a time.
pub async fn serve(listener: UnixListener, controlled: Arc<Controlled>) {
    let busy = Arc::new(tokio::sync::Semaphore::new(1));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("control socket accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // A `vstick ctl` that just got its answer may not have been seen to close yet:
        // wait briefly before calling this a second, concurrent controller.
        let permit = match tokio::time::timeout(CONTROLLER_WAIT, busy.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                tokio::spawn(refuse(stream));
                continue;
            }
        };
        let controlled = controlled.clone();
        tokio::spawn(async move {
            if let Err(e) = session(stream, &controlled).await {
                tracing::warn!("control connection closed: {e}");
            }
            drop(permit);
        });
    }
}

async fn refuse(mut stream: UnixStream) {
    let resp = Response::err("another controller is connected; try again when it disconnects");
    let _ =
        stream.write_all(format!("{}\n", serde_json::to_string(&resp).unwrap_or_default()).as_bytes()).await;
}

async fn session(stream: UnixStream, controlled: &Arc<Controlled>) -> anyhow::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = tokio::io::BufReader::new(rd);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut rd).take(MAX_REQUEST_LINE as u64 + 1).read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') && n > MAX_REQUEST_LINE {
            let resp = Response::err(format!("request longer than {MAX_REQUEST_LINE} bytes"));
            wr.write_all(format!("{}\n", serde_json::to_string(&resp)?).as_bytes()).await?;
            bail!("request line too long");
        }
        let resp = match serde_json::from_slice::<Request>(line.trim_ascii()) {
            Ok(req) => {
                tracing::info!("control: {req:?}");
                let controlled = controlled.clone();
                tokio::task::spawn_blocking(move || controlled.handle(req)).await?
            }
            Err(e) => Response::err(format!("malformed request: {e}")),
        };
        wr.write_all(format!("{}\n", serde_json::to_string(&resp)?).as_bytes()).await?;
    }
}

use tokio::io::AsyncReadExt as _;

/// `vstick ctl SOCKET ...`
pub fn run_ctl(args: CtlArgs) -> anyhow::Result<()> {
    let req = match args.request {
        CtlRequest::Status => Request::Status {},
        CtlRequest::Eject { lun, force } => Request::Eject { lun, force },
        CtlRequest::Insert { lun, path, force } => {
            // The server resolves the path in its own working directory.
            let path = std::path::absolute(&path).unwrap_or(path);
            Request::Insert { lun, path, force }
        }
    };
    let resp = request(&args.socket, &req)?;
    if !resp.ok {
        bail!("{}", resp.error.unwrap_or_else(|| "request failed".into()));
    }
    if let Some(luns) = &resp.luns {
        print!("{}", format_status(luns));
    } else if let Some(msg) = resp.message {
        println!("{msg}");
    }
    Ok(())
}

/// Sends one request and reads its response.
pub fn request(socket: &Path, req: &Request) -> anyhow::Result<Response> {
    let mut stream = StdUnixStream::connect(socket).with_context(|| {
        format!("{}: cannot connect (is `vstick serve --control` running?)", socket.display())
    })?;
    stream.write_all(format!("{}\n", serde_json::to_string(req)?).as_bytes())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    serde_json::from_str(&line).with_context(|| format!("{}: malformed response", socket.display()))
}

pub fn format_status(luns: &[LunReport]) -> String {
    let mut out = format!(
        "{:<4} {:<6} {:<7} {:<3} {:<6} {:>12} {:>12}  {}\n",
        "LUN", "TYPE", "MEDIUM", "RO", "LOCKED", "READ", "WRITTEN", "IMAGE"
    );
    let yn = |b: bool| if b { "yes" } else { "no" };
    for l in luns {
        out.push_str(&format!(
            "{:<4} {:<6} {:<7} {:<3} {:<6} {:>12} {:>12}  {}\n",
            l.lun,
            l.kind,
            yn(l.present),
            yn(l.read_only),
            yn(l.locked),
            l.bytes_read,
            l.bytes_written,
            l.image.as_deref().unwrap_or("-")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_unknown_fields_are_refused() {
        let r: Request = serde_json::from_str(r#"{"cmd":"eject","lun":2}"#).unwrap();
        assert_eq!(r, Request::Eject { lun: 2, force: false });
        let r: Request =
            serde_json::from_str(r#"{"cmd":"insert","lun":0,"path":"/a.iso","force":true}"#).unwrap();
        assert_eq!(r, Request::Insert { lun: 0, path: "/a.iso".into(), force: true });
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"format"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"eject","lun":300}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"status","x":1}"#).is_err());
    }

    fn iso(dir: &Path, name: &str) -> PathBuf {
        let mut bytes = vec![0u8; 64 * 2048];
        bytes[16 * 2048..16 * 2048 + 6].copy_from_slice(b"\x01CD001");
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A one-CD-drive device whose host has sent PREVENT MEDIUM REMOVAL.
    fn locked_cdrom(dir: &Path) -> Controlled {
        let spec = LunSpec::Cdrom { path: iso(dir, "a.iso") };
        let lun = vstick_scsi::LunConfig {
            kind: LunKind::Optical,
            medium: Some(spec.open(512).unwrap()),
            serial: "LOCKED000001".into(),
        };
        let target = vstick_scsi::Target::new(vec![lun]);
        let mut device = MassStorageDevice::new(target, vstick_usb::Identity::default_for("0".repeat(12)));
        // The first command after power-on reports the unit attention; the retry takes.
        for _ in 0..2 {
            let t = device.target_mut();
            let _ = t.begin(0, &[0x1E, 0, 0, 0, 1, 0]); // PREVENT ALLOW MEDIUM REMOVAL, prevent
            let _ = t.end();
        }
        assert!(device.target().status()[0].locked);
        Controlled { device: Arc::new(Mutex::new(device)), luns: vec![spec], block_size: 512 }
    }

    #[test]
    fn insert_with_force_swaps_a_locked_medium() {
        let dir = tempfile::tempdir().unwrap();
        let controlled = locked_cdrom(dir.path());
        let b = iso(dir.path(), "b.iso");
        let refused = controlled.handle(Request::Insert { lun: 0, path: b.clone(), force: false });
        let error = refused.error.unwrap_or_default();
        assert!(error.contains("locked") && error.contains("--force"), "{error}");
        assert!(!error.contains('\n'), "one line: {error}");
        let status = controlled.device().target().status();
        assert!(status[0].medium.as_deref().is_some_and(|m| m.ends_with("a.iso")), "unchanged");

        let forced = controlled.handle(Request::Insert { lun: 0, path: b, force: true });
        assert!(forced.ok, "{forced:?}");
        let status = controlled.device().target().status();
        assert!(status[0].medium.as_deref().is_some_and(|m| m.ends_with("b.iso")), "{status:?}");
        // The host is told: TEST UNIT READY reports the change as a unit attention.
        let mut device = controlled.device();
        let t = device.target_mut();
        let _ = t.begin(0, &[0, 0, 0, 0, 0, 0]);
        assert_eq!(t.end(), vstick_scsi::Status::CheckCondition);
    }

    #[test]
    fn stale_socket_is_replaced_live_one_refused_file_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let live = bind(&path).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let err = bind(&path).unwrap_err().to_string();
            assert!(err.contains("already listening"), "{err}");
            drop(live); // socket file stays behind: stale
            bind(&path).unwrap();
        });
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let err = bind(&file).unwrap_err().to_string();
        assert!(err.contains("not a socket"), "{err}");
    }
}
