//! What the vstick crates' tests share, so that each exists once:
//!
//! - [`FakeDevice`]: a small scripted [`vstick_usb::UsbDevice`] for
//!   transport tests (scripted IN replies or a loopback, counters the tests
//!   read);
//! - [`BotHost`]: a Bulk-Only host driver (CBW, data stage, CSW) over any
//!   [`BulkPipes`]: a BOT state machine, a device, or a transport session;
//! - [`CountingDevice`]: any device, counting the reply room it is handed;
//! - fixtures: [`device`], [`disk_target`] and [`TargetBuilder`] for devices
//!   over memory media.
//!
//! A dev-dependency only, and never of a crate whose unit tests need their
//! own crate's types (they would see a second copy of them).

mod bot_host;
mod counting;
mod fake_device;
mod fixtures;

pub use bot_host::{BotHost, BotPipes, BulkIn, BulkPipes, Data, TEST_UNIT_READY, read10, write10};
pub use counting::CountingDevice;
pub use fake_device::{DEVICE_DESCRIPTOR, FakeDevice, PRODUCT_ID, VENDOR_ID};
pub use fixtures::{BLOCK, DISK_BLOCKS, SERIAL, TargetBuilder, device, disk_target, shared_device};
