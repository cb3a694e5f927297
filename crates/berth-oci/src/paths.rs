//! Docker's default masked and read-only paths for unprivileged containers (moby's
//! defaults): the engine puts them into every such spec and shows them in inspect; tests
//! that build a Docker-like bundle use the same lists.

/// Paths hidden from unprivileged containers.
pub const DOCKER_MASKED: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths mounted read-only in unprivileged containers.
pub const DOCKER_READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
