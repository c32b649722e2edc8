//! The exported NVML functions, grouped as NVML's documentation groups them.

mod device;
mod events;
mod gpm;
mod init;
mod memory;
mod mig;
mod processes;
mod system;

use crate::runtime;
use headroom_fake::Scenario;

/// Applies `f` to the scenario if the library is initialised (for lookups that must happen
/// before [`crate::call::call`] decides which GPU a call is about).
fn lookup<T>(f: impl FnOnce(&Scenario) -> T) -> Option<T> {
    runtime::instance().ok().map(|i| f(&i.scenario))
}
