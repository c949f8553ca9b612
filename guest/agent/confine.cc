#include "guest/agent/confine.h"

#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

namespace confpod::guest::agent {
namespace {

Error confine_error(const std::string& what, int err) {
  return make_error("container.confine", what + ": " + std::strerror(err));
}

bool has(const std::vector<int>& caps, int cap) {
  return std::find(caps.begin(), caps.end(), cap) != caps.end();
}

// The calls every container may make (x86_64 names; the OCI runtimes' default profile less
// the 32-bit and other architectures' spellings). Sorted for review, not for lookup.
constexpr const char* kAllowed[] = {
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "clock_adjtime",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futex_requeue",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "modify_ldt",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "process_vm_readv",
    "process_vm_writev",
    "pselect6",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socketpair",
    "splice",
    "stat",
    "statfs",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "write",
    "writev",
    // The 32-bit x86 spellings, for 32-bit programs (the filter covers the x86 and x32 ABIs
    // too; without them the kernel's default for an unlisted ABI would kill such a program).
    "_llseek",
    "_newselect",
    "chown32",
    "clock_adjtime64",
    "clock_getres_time64",
    "clock_gettime64",
    "clock_nanosleep_time64",
    "fadvise64_64",
    "fchown32",
    "fcntl64",
    "fstat64",
    "fstatat64",
    "fstatfs64",
    "ftruncate64",
    "futex_time64",
    "getegid32",
    "geteuid32",
    "getgid32",
    "getgroups32",
    "getresgid32",
    "getresuid32",
    "getuid32",
    "io_pgetevents_time64",
    "ipc",
    "lchown32",
    "lstat64",
    "mmap2",
    "mq_timedreceive_time64",
    "mq_timedsend_time64",
    "ppoll_time64",
    "pselect6_time64",
    "recvmmsg_time64",
    "rt_sigtimedwait_time64",
    "sched_rr_get_interval_time64",
    "semtimedop_time64",
    "sendfile64",
    "setfsgid32",
    "setfsuid32",
    "setgid32",
    "setgroups32",
    "setregid32",
    "setresgid32",
    "setresuid32",
    "setreuid32",
    "setuid32",
    "sigprocmask",
    "sigreturn",
    // Not socketcall: the 32-bit multiplexer would carry socket(AF_VSOCK/AF_ALG) past the
    // argument rule on socket; 32-bit programs get EPERM for sockets.
    "stat64",
    "statfs64",
    "timer_gettime64",
    "timer_settime64",
    "timerfd_gettime64",
    "timerfd_settime64",
    "truncate64",
    "ugetrlimit",
    "utimensat_time64",
    "waitpid",
};

struct CapabilityCalls {
  int capability;
  std::initializer_list<const char*> calls;
};

// Calls a container may make only when its bounding set holds the capability they need
// (without it the kernel would refuse most of them anyway; the filter keeps the attack
// surface of the code behind them out of reach).
const CapabilityCalls kByCapability[] = {
    {CAP_DAC_READ_SEARCH, {"open_by_handle_at"}},
    {CAP_SYS_ADMIN,
     {"bpf",      "fanotify_init",  "fsconfig",          "fsmount",          "fsopen",
      "fspick",   "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr",
      "mount",    "mount_setattr",  "move_mount",        "open_tree",        "perf_event_open",
      "quotactl", "quotactl_fd",    "setdomainname",     "sethostname",      "setns",
      "syslog",   "umount",         "umount2",           "unshare"}},
    {CAP_SYS_BOOT, {"reboot"}},
    {CAP_SYS_CHROOT, {"chroot"}},
    {CAP_SYS_MODULE, {"delete_module", "finit_module", "init_module"}},
    {CAP_SYS_PACCT, {"acct"}},
    {CAP_SYS_PTRACE, {"kcmp", "pidfd_getfd", "process_madvise"}},
    {CAP_SYS_RAWIO, {"ioperm", "iopl"}},
    {CAP_SYS_TIME, {"clock_settime", "clock_settime64", "settimeofday", "stime"}},
    {CAP_SYS_TTY_CONFIG, {"vhangup"}},
    {CAP_SYS_NICE, {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
    {CAP_SYSLOG, {"syslog"}},
    {CAP_BPF, {"bpf"}},
    {CAP_PERFMON, {"perf_event_open"}},
};

// personality(2) values the default profile lets through: the plain Linux personality,
// UNAME26, ADDR_NO_RANDOMIZE... as used by setarch and glibc, and the query 0xffffffff.
constexpr std::uint32_t kPersonalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

// Socket families refused whatever the capabilities: AF_ALG (38, the kernel's crypto API) and
// AF_VSOCK (40, a way out of the VM to its host).
constexpr std::uint64_t kAfAlg = 38, kAfVsock = 40;

// clone flags that create namespaces; without CAP_SYS_ADMIN clone must carry none of them.
constexpr std::uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                                          CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
                                          CLONE_NEWCGROUP;

struct FilterDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};
using Filter = std::unique_ptr<void, FilterDeleter>;

// A comparison on the first argument, every field set (libseccomp's SCMP_A0 leaves datum_b
// out when it is not needed, which clang's -Wmissing-field-initializers refuses).
scmp_arg_cmp arg0(scmp_compare op, std::uint64_t a, std::uint64_t b = 0) {
  return scmp_arg_cmp{0, op, a, b};
}

int resolve(const char* name) { return seccomp_syscall_resolve_name(name); }

}  // namespace

Status drop_bounding_set(const std::vector<int>& keep) {
  for (int cap = 0; cap <= 63; ++cap) {
    if (has(keep, cap)) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break;  // past the kernel's last capability
      return confine_error("drop capability " + std::to_string(cap) + " from the bounding set",
                           errno);
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return confine_error("clear the ambient capabilities", errno);
  return ok_status();
}

Status set_capabilities(const std::vector<int>& caps) {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  __user_cap_data_struct data[2]{};
  for (int cap : caps) {
    if (cap < 0 || cap > 63) continue;
    const auto bit = 1u << (cap % 32);
    data[cap / 32].effective |= bit;
    data[cap / 32].permitted |= bit;
    // Inheritable stays empty, as runc and crun leave it since CVE-2022-24769: with it set,
    // a file capability could hand a non-root exec more than the container was given.
  }
  if (::syscall(SYS_capset, &header, data) != 0) return confine_error("capset", errno);
  return ok_status();
}

std::vector<std::string> default_seccomp_allowed(const std::vector<int>& caps) {
  std::vector<std::string> out(std::begin(kAllowed), std::end(kAllowed));
  for (const auto& entry : kByCapability)
    if (has(caps, entry.capability))
      for (const char* call : entry.calls) out.emplace_back(call);
  out.emplace_back("personality");
  out.emplace_back("clone");
  out.emplace_back("socket");
  if (has(caps, CAP_SYS_ADMIN)) out.emplace_back("clone3");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Status load_default_seccomp(const std::vector<int>& caps) {
  Filter filter(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
  if (!filter) return make_error("container.confine", "seccomp_init failed");
  // The 32-bit ABIs the x86_64 kernel also serves, under the same rules.
  for (std::uint32_t arch : {SCMP_ARCH_X86, SCMP_ARCH_X32}) {
    const int rc = seccomp_arch_add(filter.get(), arch);
    if (rc != 0 && rc != -EEXIST) return confine_error("seccomp_arch_add", -rc);
  }
  auto allow = [&](const char* name) -> Status {
    const int nr = resolve(name);
    // Newer than this libseccomp, or of no x86 ABI: skipped, as runc does.
    if (nr == __NR_SCMP_ERROR) return ok_status();
    const int rc = seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, nr, 0);
    if (rc != 0) return confine_error(std::string("seccomp rule for ") + name, -rc);
    return ok_status();
  };
  for (const char* name : kAllowed) CONFPOD_TRY(allow(name));
  for (const auto& entry : kByCapability)
    if (has(caps, entry.capability))
      for (const char* call : entry.calls) CONFPOD_TRY(allow(call));
  // socket: every family but AF_ALG and AF_VSOCK (three rules, any of which allows).
  for (const scmp_arg_cmp& cmp :
       {arg0(SCMP_CMP_LT, kAfAlg), arg0(SCMP_CMP_EQ, kAfAlg + 1), arg0(SCMP_CMP_GT, kAfVsock)}) {
    const int rc = seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, cmp);
    if (rc != 0) return confine_error("seccomp rule for socket", -rc);
  }
  for (std::uint32_t value : kPersonalities) {
    const int rc = seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
                                    arg0(SCMP_CMP_EQ, value));
    if (rc != 0) return confine_error("seccomp rule for personality", -rc);
  }
  if (has(caps, CAP_SYS_ADMIN)) {
    CONFPOD_TRY(allow("clone"));
    CONFPOD_TRY(allow("clone3"));
  } else {
    const int rc = seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                                    arg0(SCMP_CMP_MASKED_EQ, kNamespaceFlags, 0));
    if (rc != 0) return confine_error("seccomp rule for clone", -rc);
    // clone3 passes its flags in memory the filter cannot read: ENOSYS makes the C library
    // fall back to clone, whose flags it can.
    const int rc3 = seccomp_rule_add(filter.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc3 != 0) return confine_error("seccomp rule for clone3", -rc3);
  }
  const int rc = seccomp_load(filter.get());
  if (rc != 0) return confine_error("seccomp_load", -rc);
  return ok_status();
}

}  // namespace confpod::guest::agent
