//! This machine as builders name it, and the clocks the library's builds are handed: what the
//! library must not read itself (the environment, the clock).

use carload::shipment::lock::Owner;
use carload::shipment::runner::{Clock, Hooks};
use std::time::{Instant, SystemTime};

/// This machine's host name (the kernel's, else `/etc/hostname`, else `$HOSTNAME`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// This builder's identity in lock files: host name, pid, boot ID and PID namespace.
pub fn owner() -> Owner {
    Owner::this_process(&host_name())
}

/// The system's clocks.
pub const CLOCK: Clock = Clock { wall: SystemTime::now, monotonic: Instant::now };

/// What a build run by this process is handed: `owner`, the system's clocks, and registration
/// of its temporaries and lock for removal on a signal.
pub fn hooks(owner: &Owner) -> Hooks<'_> {
    Hooks { owner, clock: CLOCK, cleanup: &super::signals::CLEANUP }
}
