/*
 * The job's default seccomp filter, built with libseccomp (which knows each
 * architecture's syscall numbers). Modelled on Docker's default profile and
 * systemd's @system-service set, as a list of what is refused rather than
 * of what is allowed: the job already runs unprivileged with no_new_privs,
 * so what remains to take away is the kernel surface an unprivileged user
 * reaches, and each refusal here has its reason in the RFD's table
 * (docs/rfd/0001-jobworker.md, "Syscall filter").
 *
 * Refusals answer EPERM, as for a missing capability, so that programs take
 * their unprivileged path instead of dying; clone3 answers ENOSYS, as in
 * Docker, because its flags are in memory where a filter cannot read them,
 * and glibc then falls back to clone, whose flags are checked. A syscall of
 * another ABI (i386 through int 0x80, x32 on x86_64) kills the process: it
 * would bypass every rule here, and no program of that ABI can run with all
 * of its syscalls refused.
 */
#define _GNU_SOURCE
#include "syscall-filter.h"

#include <errno.h>
#include <linux/personality.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>

/* Refused whatever their arguments. */
static const int refused[] = {
    /* New namespaces or joining others (clone is checked by flag below): a user
     * namespace would give the job every capability over the ones it makes. */
    SCMP_SYS(unshare),
    SCMP_SYS(setns),
    /* The mount family. */
    SCMP_SYS(mount),
    SCMP_SYS(umount),
    SCMP_SYS(umount2),
    SCMP_SYS(pivot_root),
    SCMP_SYS(move_mount),
    SCMP_SYS(open_tree),
    SCMP_SYS(fsopen),
    SCMP_SYS(fsconfig),
    SCMP_SYS(fsmount),
    SCMP_SYS(fspick),
    SCMP_SYS(mount_setattr),
    /* Programs and code run by the kernel. */
    SCMP_SYS(bpf),
    SCMP_SYS(perf_event_open),
    SCMP_SYS(kexec_load),
    SCMP_SYS(kexec_file_load),
    SCMP_SYS(init_module),
    SCMP_SYS(finit_module),
    SCMP_SYS(delete_module),
    /* Host-wide state. */
    SCMP_SYS(reboot),
    SCMP_SYS(swapon),
    SCMP_SYS(swapoff),
    SCMP_SYS(acct),
    SCMP_SYS(settimeofday),
    SCMP_SYS(clock_settime),
    SCMP_SYS(clock_adjtime),
    SCMP_SYS(adjtimex),
    SCMP_SYS(syslog),
    SCMP_SYS(vhangup),
    SCMP_SYS(quotactl),
    SCMP_SYS(quotactl_fd),
    SCMP_SYS(iopl),
    SCMP_SYS(ioperm),
    /* Kernel surface used mostly by exploits. */
    SCMP_SYS(userfaultfd),
    SCMP_SYS(io_uring_setup),
    SCMP_SYS(io_uring_enter),
    SCMP_SYS(io_uring_register),
    SCMP_SYS(kcmp),
    SCMP_SYS(open_by_handle_at),
    SCMP_SYS(lookup_dcookie),
};

/* clone flags that make a namespace. */
static const unsigned long namespace_flags[] = {
    CLONE_NEWUSER, CLONE_NEWNS,  CLONE_NEWPID,    CLONE_NEWNET,
    CLONE_NEWUTS,  CLONE_NEWIPC, CLONE_NEWCGROUP,
};

/* The personality flags the kernel itself drops at a setuid exec (PER_CLEAR_ON_SETID):
 * they weaken the memory layout (no ASLR, executable data, page zero). */
static const unsigned personality_flags[] = {
    READ_IMPLIES_EXEC,
    ADDR_NO_RANDOMIZE,
    ADDR_COMPAT_LAYOUT,
    MMAP_PAGE_ZERO,
};

/* A value with bit 31 set passes, so that the query (0xffffffff) does: libseccomp 2.5
 * cannot compare one argument twice in a rule, and the kernel defines no flag there. */
#define PERSONALITY_QUERY_BIT 0x80000000u

/* One rule; cmp NULL: whatever the arguments. -errno on failure. */
static int add(scmp_filter_ctx ctx, int errno_value, int nr, const struct scmp_arg_cmp *cmp) {
  return seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(errno_value), nr, cmp != NULL, cmp);
}

static int add_rules(scmp_filter_ctx ctx) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < sizeof refused / sizeof refused[0]; i++)
    rc = add(ctx, EPERM, refused[i], NULL);
  /* s390 takes clone's stack first and its flags second. */
  unsigned flags_arg = seccomp_arch_native() == SCMP_ARCH_S390X ? 1 : 0;
  for (size_t i = 0; rc == 0 && i < sizeof namespace_flags / sizeof namespace_flags[0]; i++) {
    struct scmp_arg_cmp cmp =
        SCMP_CMP(flags_arg, SCMP_CMP_MASKED_EQ, namespace_flags[i], namespace_flags[i]);
    rc = add(ctx, EPERM, SCMP_SYS(clone), &cmp);
  }
  if (rc == 0) rc = add(ctx, ENOSYS, SCMP_SYS(clone3), NULL);
  for (size_t i = 0; rc == 0 && i < sizeof personality_flags / sizeof personality_flags[0]; i++) {
    unsigned flag = personality_flags[i];
    struct scmp_arg_cmp cmp =
        SCMP_A0_32(SCMP_CMP_MASKED_EQ, flag | PERSONALITY_QUERY_BIT, flag);
    rc = add(ctx, EPERM, SCMP_SYS(personality), &cmp);
  }
  return rc;
}

const char *load_job_filter(void) {
  /* Only the native architecture is in the filter: any other is bad-arch. */
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL) {
    errno = ENOMEM;
    return "seccomp_init";
  }
  const char *call = "seccomp_attr_set";
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc == 0) {
    call = "seccomp_rule_add";
    rc = add_rules(ctx);
  }
  if (rc == 0) {
    call = "seccomp_load";
    rc = seccomp_load(ctx);
  }
  seccomp_release(ctx);
  /* libseccomp returns -errno. */
  errno = -rc;
  return rc == 0 ? NULL : call;
}
