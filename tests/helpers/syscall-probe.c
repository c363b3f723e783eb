/*
 * syscall-probe NAME...: the seccomp test's probe (compiled by the test, run
 * as a job). Makes each named syscall in a child of its own, with arguments
 * the kernel refuses cheaply before doing anything (a NULL pointer, a bad
 * descriptor or flag), and prints `NAME ERRNO-NAME`, `NAME ok` or
 * `NAME SIGNAL-NAME`. Without the filter none of them answers EPERM, even as
 * root: the filter's EPERM is then told apart from a missing capability's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { I386_GETPID = -1 }; /* not a syscall number: getpid through int 0x80 */

struct probe {
  const char *name;
  long nr;
  long args[5];
};

static const struct probe probes[] = {
    {"unshare-user", SYS_unshare, {CLONE_NEWUSER}},
    {"unshare-mount", SYS_unshare, {CLONE_NEWNS}},
    {"setns", SYS_setns, {-1, 0}},
    {"clone-user", SYS_clone, {CLONE_NEWUSER | SIGCHLD}},
    {"clone-mount", SYS_clone, {CLONE_NEWNS | SIGCHLD}},
    {"clone", SYS_clone, {SIGCHLD}},
    {"clone3", SYS_clone3, {0, 0}},
    {"mount", SYS_mount, {0, 0, 0, 0, 0}},
    {"umount2", SYS_umount2, {0, 0}},
    {"pivot_root", SYS_pivot_root, {0, 0}},
    {"move_mount", SYS_move_mount, {-1, 0, -1, 0, 0}},
    {"open_tree", SYS_open_tree, {-1, 0, 0}},
    {"fsopen", SYS_fsopen, {0, 0}},
    {"fsconfig", SYS_fsconfig, {-1, 0, 0, 0, 0}},
    {"fsmount", SYS_fsmount, {-1, 0, 0}},
    {"fspick", SYS_fspick, {-1, 0, 0}},
    {"mount_setattr", SYS_mount_setattr, {-1, 0, 0, 0, 0}},
    {"bpf", SYS_bpf, {-1, 0, 0}},
    {"perf_event_open", SYS_perf_event_open, {0, 0, -1, -1, 0}},
    {"kexec_load", SYS_kexec_load, {0, 1000, 0, 0}},
    {"kexec_file_load", SYS_kexec_file_load, {-1, -1, 0, 0, -1}},
    {"init_module", SYS_init_module, {0, 0, 0}},
    {"finit_module", SYS_finit_module, {-1, 0, 0}},
    {"delete_module", SYS_delete_module, {0, 0}},
    {"reboot", SYS_reboot, {0, 0, 0, 0}},
    {"swapon", SYS_swapon, {0, -1}},
    {"swapoff", SYS_swapoff, {0}},
    {"acct", SYS_acct, {1}},
    {"settimeofday", SYS_settimeofday, {1, 0}},
    {"clock_settime", SYS_clock_settime, {CLOCK_REALTIME, 0}},
    {"clock_adjtime", SYS_clock_adjtime, {CLOCK_REALTIME, 0}},
    {"adjtimex", SYS_adjtimex, {0}},
    {"syslog", SYS_syslog, {-1, 0, 0}},
    {"vhangup", SYS_vhangup, {0}}, /* the job has no controlling terminal */
    {"quotactl", SYS_quotactl, {99, 0, 0, 0}},
    {"quotactl_fd", SYS_quotactl_fd, {-1, 0, 0, 0}},
    {"userfaultfd", SYS_userfaultfd, {-1}},
    {"io_uring_setup", SYS_io_uring_setup, {0, 0}},
    {"io_uring_enter", SYS_io_uring_enter, {-1, 0, 0, 0, 0}},
    {"io_uring_register", SYS_io_uring_register, {-1, 0, 0, 0}},
    {"kcmp", SYS_kcmp, {0, 0, 99, 0, 0}},
    {"open_by_handle_at", SYS_open_by_handle_at, {-1, 0, 0}},
    {"lookup_dcookie", SYS_lookup_dcookie, {0, 0, 0}},
    {"personality-noaslr", SYS_personality, {0x0040000}},
    {"personality-query", SYS_personality, {0xffffffff}},
    {"personality-linux32", SYS_personality, {0x0008}},
#ifdef __x86_64__
    {"iopl", SYS_iopl, {99}},
    {"ioperm", SYS_ioperm, {0, 0, 1}},
    {"x32-getpid", 0x40000000 | SYS_getpid, {0}},
    {"i386-getpid", I386_GETPID, {0}},
#endif
};

static long call(const struct probe *p) {
#ifdef __x86_64__
  if (p->nr == I386_GETPID) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
    if (ret < 0 && ret > -4096) {
      errno = (int)-ret;
      return -1;
    }
    return ret;
  }
#endif
  long ret = syscall(p->nr, p->args[0], p->args[1], p->args[2], p->args[3], p->args[4]);
  if (ret == 0 && p->nr == SYS_clone) _exit(0); /* the clone's child */
  if (ret > 0 && p->nr == SYS_clone) waitpid((pid_t)ret, NULL, 0);
  return ret;
}

static void run(const struct probe *p) {
  pid_t child = fork();
  if (child == 0) {
    long ret = call(p);
    const char *errno_name = strerrorname_np(errno);
    dprintf(1, "%s %s\n", p->name, ret != -1 ? "ok" : errno_name ? errno_name : "?");
    _exit(0);
  }
  int status;
  if (child > 0 && waitpid(child, &status, 0) == child && WIFSIGNALED(status))
    dprintf(1, "%s SIG%s\n", p->name, sigabbrev_np(WTERMSIG(status)));
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    size_t k = 0, n = sizeof probes / sizeof probes[0];
    while (k < n && strcmp(probes[k].name, argv[i]) != 0) k++;
    if (k == n) {
      dprintf(2, "syscall-probe: no probe %s\n", argv[i]);
      return 2;
    }
    run(&probes[k]);
  }
  return 0;
}
