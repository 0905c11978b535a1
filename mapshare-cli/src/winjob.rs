//! Windows: `lock NAME -- CMD` keeps CMD from outliving its lock.
//!
//! On Linux CMD inherits the lock's liveness (a descriptor holding the
//! registry's byte lock), so the lock stays held until CMD exits even if
//! `mapshare` is killed. Windows byte-range locks belong to the process
//! that took them and cannot be handed to a child; the lock lasts exactly
//! as long as this process. So the other half of the same promise ("never
//! two guarded commands at once") is kept the other way round: before it
//! starts CMD, this process puts itself in a job object marked
//! kill-on-close; CMD and everything it starts inherit the job; when this
//! process ends (killed with TerminateProcess included), the system closes
//! its job handle and ends every process in the job, CMD's whole tree,
//! before the next locker can take the lock over.

use std::io;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
    SetInformationJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Threading::GetCurrentProcess;

/// Puts this process in a new kill-on-close job, for the rest of its life:
/// every process it starts from now on ends when it ends. The job handle
/// is deliberately never closed (closing it would end us and CMD at once);
/// the system closes it when this process exits.
pub(crate) fn die_together() -> io::Result<()> {
    // SAFETY: plain Win32 calls: a null name and null security attributes
    // ask for an anonymous job with the default (non-inheritable) handle.
    let job: HANDLE = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
    if job.is_null() {
        return Err(io::Error::last_os_error());
    }
    let mut info = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    // SAFETY: `job` is the live job handle created above; `info` is a
    // valid JOBOBJECT_EXTENDED_LIMIT_INFORMATION of the size passed,
    // which the call only reads.
    let set = unsafe {
        SetInformationJobObject(
            job,
            JobObjectExtendedLimitInformation,
            (&raw const info).cast(),
            std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        )
    };
    // SAFETY: no arguments; a pseudo-handle for this process, never closed.
    let me = unsafe { GetCurrentProcess() };
    // SAFETY: `job` is the live handle created above; `me` is valid.
    let assigned = set != 0 && unsafe { AssignProcessToJobObject(job, me) } != 0;
    if !assigned {
        let e = io::Error::last_os_error();
        // SAFETY: `job` is ours, and nothing is in it: closing ends nobody.
        unsafe { CloseHandle(job) };
        return Err(e);
    }
    Ok(())
}
