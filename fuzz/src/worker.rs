//! A thread with a tokio worker's 2 MiB stack, on which a stack overflow is a reported
//! crash.
//!
//! libFuzzer's `main` runs instead of Rust's, so Rust's handler that reports "thread has
//! overflowed its stack" is never installed, and libFuzzer's SIGSEGV handler runs on the
//! stack that just overflowed: the process dies of a second fault, with no report and no
//! crash file. [`report_stack_overflows`], run before libFuzzer installs its handlers,
//! installs a SIGSEGV handler that libFuzzer calls first and that runs on an alternate
//! stack, which [`on_worker_stack`] gives each worker. It says whether the fault was a
//! stack overflow and aborts, which libFuzzer reports as a crash and saves the input.

#![allow(unsafe_code)] // sigaction and sigaltstack; nothing else.

use std::cell::Cell;

/// The stack of a tokio worker thread, on which the injector answers reviews.
pub const WORKER_STACK_BYTES: usize = 2 << 20;

/// The stack the SIGSEGV handler and libFuzzer's crash report run on.
const SIGNAL_STACK_BYTES: usize = 256 << 10;

/// How far from a worker's stack end a fault still counts as overflowing it.
const OVERFLOW_SLACK: usize = 64 << 10;

thread_local! {
    /// About where this worker's stack ends (its lowest address); 0 outside workers.
    static STACK_END: Cell<usize> = const { Cell::new(0) };
}

/// Makes a stack overflow in [`on_worker_stack`] a crash libFuzzer reports. Call it from
/// the target's `init`, which runs before libFuzzer installs its signal handlers.
pub fn report_stack_overflows() {
    // SAFETY: the action is fully initialised (zeroed, then an empty mask), its handler
    // has the SA_SIGINFO signature, and the old action is not asked for.
    let installed = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_segv as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut())
    };
    assert_eq!(installed, 0, "sigaction(SIGSEGV)");
}

/// Says whether the fault was an overflow of a worker's stack, then aborts.
extern "C" fn on_segv(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes an SA_SIGINFO handler a valid siginfo for SIGSEGV.
    let address = unsafe { (*info).si_addr() } as usize;
    let end = STACK_END.with(Cell::get);
    let message: &[u8] = if end != 0 && address.abs_diff(end) <= OVERFLOW_SLACK {
        b"\n==keyhole-fuzz== stack overflow: the input overflowed a 2 MiB worker stack\n"
    } else {
        b"\n==keyhole-fuzz== SIGSEGV, not at the end of a stack\n"
    };
    // SAFETY: write and abort are async-signal-safe; the message is a static buffer.
    unsafe {
        libc::write(2, message.as_ptr().cast(), message.len());
        libc::abort();
    }
}

/// The alternate signal stack of the current thread, removed on drop.
struct SignalStack {
    _memory: Vec<u8>,
}

impl SignalStack {
    fn install() -> Self {
        let mut memory = Vec::<u8>::with_capacity(SIGNAL_STACK_BYTES);
        let stack = libc::stack_t {
            ss_sp: memory.as_mut_ptr().cast(),
            ss_flags: 0,
            ss_size: SIGNAL_STACK_BYTES,
        };
        // SAFETY: the memory outlives the registration, which `drop` removes first.
        let installed = unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) };
        assert_eq!(installed, 0, "sigaltstack");
        let here = std::ptr::from_ref(&stack) as usize;
        STACK_END.with(|end| end.set(here.saturating_sub(WORKER_STACK_BYTES)));
        Self { _memory: memory }
    }
}

impl Drop for SignalStack {
    fn drop(&mut self) {
        STACK_END.with(|end| end.set(0));
        let disable = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disabling takes no memory; the stack is freed only after this.
        let removed = unsafe { libc::sigaltstack(&disable, std::ptr::null_mut()) };
        assert_eq!(removed, 0, "sigaltstack(SS_DISABLE)");
    }
}

/// Runs `f` on a thread with a tokio worker's 2 MiB stack, so a stack overflow in it is a
/// crash (reported as such after [`report_stack_overflows`]). A panic is passed on.
pub fn on_worker_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(WORKER_STACK_BYTES)
            .spawn_scoped(scope, || {
                let _signal_stack = SignalStack::install();
                f()
            })
            .expect("spawn a worker thread")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
