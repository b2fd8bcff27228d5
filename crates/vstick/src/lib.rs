//! vstick: disk images presented as a USB mass-storage device.
