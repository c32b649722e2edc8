//! Opening the fake world a fake driver library plays (`libheadroom_fake_nvml.so`,
//! `libheadroom_fake_dcgm.so`): the scenario named by [`crate::ENV_SCENARIO`], the optional
//! shared state directory ([`crate::ENV_STATE_DIR`]) and the virtual clock.

use crate::{Clock, Scenario, StateDir};

/// What a fake library needs to answer calls.
#[derive(Debug)]
pub struct World {
    pub scenario: Scenario,
    pub clock: Clock,
    pub state: Option<StateDir>,
}

/// Why the world could not be opened; the message names the variable or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error(
        "{} is not set: point it at a scenario file (see docs/scenarios.md)",
        crate::ENV_SCENARIO
    )]
    NoScenario,
    #[error("{0}")]
    Invalid(String),
}

impl World {
    /// Opens the world from the environment.
    pub fn from_env() -> Result<Self, WorldError> {
        let path = std::env::var_os(crate::ENV_SCENARIO)
            .filter(|p| !p.is_empty())
            .ok_or(WorldError::NoScenario)?;
        let scenario = Scenario::load(std::path::Path::new(&path))
            .map_err(|e| WorldError::Invalid(e.to_string()))?;
        let state = StateDir::from_env()
            .transpose()
            .map_err(|e| WorldError::Invalid(format!("{}: {e}", crate::ENV_STATE_DIR)))?;
        let clock = Clock::from_env(scenario.time_scale, state.as_ref().map(StateDir::root))
            .map_err(|e| WorldError::Invalid(e.to_string()))?;
        Ok(World {
            scenario,
            clock,
            state,
        })
    }
}
