// Included (`include!`) by the library's and the binary's tests: one helper for both crates.

/// Runs `f` on a thread that may not bypass file permissions (threads it starts inherit that):
/// as root (tests run as root here) it drops `CAP_DAC_OVERRIDE` and `CAP_DAC_READ_SEARCH` from
/// its effective set — capabilities are per thread in Linux — so a mode-000 file is as
/// unreadable to it as to any user. Panics if the drop fails.
pub fn without_permission_bypass<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            #[repr(C)]
            struct Header {
                version: u32,
                pid: i32,
            }
            #[repr(C)]
            #[derive(Clone, Copy, Default)]
            struct Data {
                effective: u32,
                permitted: u32,
                inheritable: u32,
            }
            let mut h = Header { version: 0x2008_0522, pid: 0 };
            let mut d = [Data::default(); 2];
            // SAFETY: a header and two data records, as capget/capset (version 3) take them.
            let r = unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()) };
            assert_eq!(r, 0, "capget: {}", std::io::Error::last_os_error());
            d[0].effective &= !((1 << 1) | (1 << 2)); // CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            // SAFETY: as above.
            let r = unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()) };
            assert_eq!(r, 0, "capset: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    })
}
