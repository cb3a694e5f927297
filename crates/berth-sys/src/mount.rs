//! `mount_setattr(2)`: recursive mount attributes (`rro`, `rnosuid`, ... in OCI mount options)
//! and id-mapped mounts, which `rustix` does not wrap yet.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

pub const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
pub const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
pub const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;
pub const MOUNT_ATTR__ATIME: u64 = 0x0000_0070;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0000_0000;
pub const MOUNT_ATTR_NOATIME: u64 = 0x0000_0010;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x0000_0020;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x0000_0080;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// `AT_RECURSIVE`: apply to the whole mount tree below the path.
pub const AT_RECURSIVE: u32 = 0x8000;

/// Attribute changes for [`mount_setattr`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: Option<i32>,
}

/// `mount_setattr(dirfd, path, flags, attr)`. Use `AT_EMPTY_PATH` with an empty path to act on
/// `dirfd` itself and [`AT_RECURSIVE`] for the whole subtree.
pub fn mount_setattr(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    flags: u32,
    attr: &MountAttr,
) -> io::Result<()> {
    #[repr(C)]
    struct RawMountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let raw = RawMountAttr {
        attr_set: attr.attr_set,
        attr_clr: attr.attr_clr,
        propagation: attr.propagation,
        userns_fd: attr.userns_fd.map_or(0, |fd| fd as u64),
    };
    // SAFETY: dirfd is a live borrowed descriptor, path a valid C string, and `raw` a valid
    // mount_attr whose size we pass; the kernel only reads it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            flags as libc::c_uint,
            &raw as *const RawMountAttr,
            std::mem::size_of::<RawMountAttr>(),
        )
    };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
