//! Checks made before the engine starts, so that a machine that cannot run glommio gets a plain
//! explanation instead of glommio's panic ("kernel too old") or a silent exit (DESIGN traps 5
//! and 6).

use std::io;

/// glommio refuses to create an executor below this much locked memory.
const MEMLOCK_MIN_BYTES: u64 = 512 * 1024;
/// Below this much locked memory per shard glommio falls back to unregistered buffers.
const MEMLOCK_COMFORTABLE_PER_SHARD_BYTES: u64 = 3 * 1024 * 1024;

/// Why the node cannot start here.
#[derive(Debug)]
pub struct PreflightError(pub String);

impl std::fmt::Display for PreflightError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PreflightError {}

/// Raises the soft memlock limit to the hard one and checks io_uring works.
///
/// # Errors
/// [`PreflightError`] with the cause and the remedy.
pub fn check(shards: usize) -> Result<(), PreflightError> {
    let memlock = raise_memlock()?;
    if memlock < MEMLOCK_MIN_BYTES {
        return Err(PreflightError(format!(
            "locked-memory limit (RLIMIT_MEMLOCK) is {} KiB; spindle needs at least {} KiB for its \
             io_uring rings. Raise it: `ulimit -l unlimited` in the shell, \
             `--ulimit memlock=-1` for docker, `LimitMEMLOCK=infinity` for systemd",
            memlock / 1024,
            MEMLOCK_MIN_BYTES / 1024
        )));
    }
    let per_shard = memlock / u64::try_from(shards.max(1)).unwrap_or(1);
    if per_shard < MEMLOCK_COMFORTABLE_PER_SHARD_BYTES {
        tracing::warn!(
            memlock_kib = memlock / 1024,
            shards,
            "locked-memory limit is low: I/O buffers will not be registered with io_uring \
             (slower); raise RLIMIT_MEMLOCK for full speed"
        );
    }
    probe_io_uring()
}

/// The soft memlock limit after raising it as far as the hard limit allows.
fn raise_memlock() -> Result<u64, PreflightError> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return Err(PreflightError(format!(
            "cannot read RLIMIT_MEMLOCK: {}",
            io::Error::last_os_error()
        )));
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit from the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) } == 0 {
            limit = raised;
        }
    }
    Ok(if limit.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        limit.rlim_cur
    })
}

/// Sets up (and closes) a tiny io_uring to see whether the kernel lets this process use one.
fn probe_io_uring() -> Result<(), PreflightError> {
    // struct io_uring_params is 120 bytes; zeroed means "no flags".
    let mut params = [0u32; 30];
    // SAFETY: io_uring_setup reads and writes the params struct we own and returns a new
    // descriptor (closed below) or -1.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd < 0 {
        let err = io::Error::last_os_error();
        let cause = match err.raw_os_error() {
            Some(libc::ENOSYS) => "this kernel has no io_uring (Linux 5.8 or later is needed)",
            Some(libc::EPERM) | Some(libc::EACCES) => {
                "io_uring is blocked: by a seccomp profile (docker: --security-opt \
                 seccomp=unconfined or a profile allowing io_uring_setup/io_uring_enter/\
                 io_uring_register) or by sysctl kernel.io_uring_disabled"
            }
            Some(libc::ENOMEM) => {
                "the locked-memory limit (RLIMIT_MEMLOCK) is too low for io_uring"
            }
            _ => "io_uring cannot be set up",
        };
        return Err(PreflightError(format!("{cause} ({err})")));
    }
    // SAFETY: `fd` is the descriptor io_uring_setup just returned to us.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}
