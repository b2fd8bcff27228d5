//! `--vendor-id`, `--product-id`, `--manufacturer`, `--product`, `--serial`:
//! who the device says it is, from the command line or the stick profile,
//! checked once for every transport (the transports all read
//! `MassStorageDevice::identity`).

use anyhow::bail;
use vstick_usb::Identity;

use crate::cli::IdentityArgs;

/// Longest text of a string descriptor: bLength is one byte, so (255 - 2) / 2
/// UTF-16 code units (USB 2.0 Table 9-16).
const MAX_UTF16_UNITS: usize = 126;
/// Longest string Linux's gadget configfs takes: `usb_string_copy` in
/// drivers/usb/gadget/configfs.c refuses more than `USB_MAX_STRING_LEN` (126)
/// bytes with EOVERFLOW, counting bytes of UTF-8, not characters.
const MAX_CONFIGFS_BYTES: usize = 126;

/// An ID as given: text from the command line, a TOML integer (`0x1d6b` is a
/// TOML hex literal) or a string from the profile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum IdValue {
    Number(i64),
    Text(String),
}

/// The profile's identity keys (top-level, named like the options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileIdentity {
    pub vendor_id: Option<IdValue>,
    pub product_id: Option<IdValue>,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
}

/// Checked identity overrides; `None` keeps vstick's default for that field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentitySpec {
    pub vendor_id: Option<u16>,
    pub product_id: Option<u16>,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
}

/// Where a value came from, for the error line: the option, or the profile's key.
struct Source<'a> {
    option: &'a str,
    key: &'a str,
    profile: Option<&'a str>,
}

impl Source<'_> {
    fn label(&self, from_cli: bool) -> String {
        match (from_cli, self.profile) {
            (false, Some(profile)) => format!("{profile}: {}", self.key),
            _ => self.option.to_string(),
        }
    }
}

impl IdentitySpec {
    /// The command line's values, else the profile's (`profile_name` names it in
    /// errors), each checked. `gadget`: the strings also go through Linux's
    /// configfs, which counts bytes.
    pub fn resolve(
        cli: &IdentityArgs,
        profile: &ProfileIdentity,
        profile_name: Option<&str>,
        gadget: bool,
    ) -> anyhow::Result<Self> {
        let src = |option, key| Source { option, key, profile: profile_name };
        let id =
            |cli: &Option<String>, prof: &Option<IdValue>, s: Source<'_>| -> anyhow::Result<Option<u16>> {
                match (cli, prof) {
                    (Some(text), _) => parse_id(&s.label(true), &IdValue::Text(text.clone())).map(Some),
                    (None, Some(v)) => parse_id(&s.label(false), v).map(Some),
                    (None, None) => Ok(None),
                }
            };
        let text =
            |cli: &Option<String>, prof: &Option<String>, s: Source<'_>| -> anyhow::Result<Option<String>> {
                let (value, from_cli) = match (cli, prof) {
                    (Some(v), _) => (v, true),
                    (None, Some(v)) => (v, false),
                    (None, None) => return Ok(None),
                };
                check_string(&s.label(from_cli), value, gadget)?;
                Ok(Some(value.clone()))
            };
        Ok(Self {
            vendor_id: id(&cli.vendor_id, &profile.vendor_id, src("--vendor-id", "vendor_id"))?,
            product_id: id(&cli.product_id, &profile.product_id, src("--product-id", "product_id"))?,
            manufacturer: text(
                &cli.manufacturer,
                &profile.manufacturer,
                src("--manufacturer", "manufacturer"),
            )?,
            product: text(&cli.product, &profile.product, src("--product", "product"))?,
            serial: text(&cli.serial, &profile.serial, src("--serial", "serial"))?,
        })
    }

    /// The device's identity: vstick's defaults (pid.codes 1209:0001, "vstick",
    /// "vstick USB stick", bcdDevice 1.00) with these overrides; `default_serial`
    /// is asked only when no serial was given.
    pub fn identity(&self, default_serial: impl FnOnce() -> String) -> Identity {
        let mut id = Identity::default_for(self.serial.clone().unwrap_or_else(default_serial));
        if let Some(v) = self.vendor_id {
            id.vendor_id = v;
        }
        if let Some(p) = self.product_id {
            id.product_id = p;
        }
        if let Some(m) = &self.manufacturer {
            id.manufacturer = m.clone();
        }
        if let Some(p) = &self.product {
            id.product = p.clone();
        }
        id
    }

    /// A warning when the given serial is not what BOT 1.0 §4.1.1 asks for (at
    /// least 12 characters of 0-9, A-F). Many real sticks have such serials and
    /// hosts still use them, so it is served anyway.
    pub fn serial_warning(&self) -> Option<String> {
        let serial = self.serial.as_deref()?;
        let conformant = serial.chars().count() >= 12
            && serial.chars().all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c));
        (!conformant).then(|| {
            format!(
                "serial {serial:?} is not a BOT serial number (BOT 1.0 §4.1.1: at least 12 characters \
                 of 0-9 and A-F); served as given, but Linux and Windows may not treat it as a \
                 conformant serial"
            )
        })
    }
}

/// A 16-bit USB ID: decimal, or hex with 0x.
fn parse_id(label: &str, value: &IdValue) -> anyhow::Result<u16> {
    let (shown, number) = match value {
        IdValue::Number(n) => (n.to_string(), Some(i128::from(*n))),
        IdValue::Text(text) => {
            let t = text.trim();
            let (digits, radix) = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => (hex, 16),
                None => (t.strip_prefix('-').unwrap_or(t), 10),
            };
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                bail!("{label}: {text:?} is not a number; give hex (0x1d6b) or decimal (7531)");
            }
            // Too many digits for an i128 is out of range all the same.
            let n = i128::from_str_radix(digits, radix).ok().map(|n| if t.starts_with('-') { -n } else { n });
            (t.to_string(), n)
        }
    };
    match number.and_then(|n| u16::try_from(n).ok()) {
        Some(id) => Ok(id),
        None => bail!("{label}: {shown} is out of range; a USB ID is 16 bits, 0 to 0xffff (65535)"),
    }
}

/// Non-empty, printable (no control characters), and short enough for a string
/// descriptor (and, under `--gadget`, for configfs).
fn check_string(label: &str, value: &str, gadget: bool) -> anyhow::Result<()> {
    if value.is_empty() {
        bail!("{label}: empty; give at least one character, or leave it out for the default");
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        bail!(
            "{label}: contains the control character U+{:04X}; USB strings must be printable",
            u32::from(c)
        );
    }
    let units = value.encode_utf16().count();
    if units > MAX_UTF16_UNITS {
        bail!(
            "{label}: {units} UTF-16 code units; a USB string descriptor holds at most {MAX_UTF16_UNITS} \
             (shorten it)"
        );
    }
    if gadget && value.len() > MAX_CONFIGFS_BYTES {
        bail!(
            "{label}: {} bytes of UTF-8; Linux's gadget configfs takes at most {MAX_CONFIGFS_BYTES} \
             (shorten it)",
            value.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
