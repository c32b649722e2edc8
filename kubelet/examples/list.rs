//! Prints what the kubelet's pod-resources API says: one line per container device
//! assignment, then the GPU/MIG devices Headroom would attribute. For checking a node by hand:
//!
//! ```sh
//! cargo run -p headroom-kubelet --example list -- /var/lib/kubelet/pod-resources/kubelet.sock
//! ```

use headroom_kubelet::attribute::device_uuid;
use headroom_kubelet::client::{DEFAULT_SOCKET, list};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let socket = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_SOCKET.into());
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("list: cannot start a runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(list(socket.as_ref(), Duration::from_secs(5))) {
        Ok(pods) => {
            println!("{} pods", pods.len());
            for p in &pods {
                for c in &p.containers {
                    for d in &c.devices {
                        for id in &d.device_ids {
                            let gpu = device_uuid(id).map_or("-", |_| "gpu");
                            println!(
                                "{}/{} {} {} {id} {gpu}",
                                p.namespace, p.name, c.name, d.resource_name
                            );
                        }
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("list: {socket}: {e}");
            ExitCode::from(1)
        }
    }
}
