/*
 * What the helper (jobexec.c) and the fork server (fork-server.c) share:
 * the job's options, filled field by field from the direct mode's command
 * line or a launch request, and the helper run on them.
 */
#ifndef JOBEXEC_HELPER_H
#define JOBEXEC_HELPER_H

#include <stddef.h>
#include <sys/types.h>

#include "protocol.h"

/* What to start. */
struct spec {
  const char *cgroup1_dirs[LIMIT_MAX_CGROUPS]; /* v1 cgroups init joins itself */
  int n_cgroups;
  const char *cgroup2_dir; /* v2 dir for CLONE_INTO_CGROUP */
  const char *private_dirs[LIMIT_MAX_PRIVATE_DIRS]; /* host dirs hidden under a private tmpfs */
  int n_private_dirs;
  const char *hostname;
  const char *cwd;
  uid_t uid;
  gid_t gid;
  int host_network;
  int stdin_open;              /* fd 0 carries the job's input (FIELD_STDIN) */
  unsigned tty_rows, tty_cols; /* a terminal of this size for the job; 0: none */
  pid_t parent_pid; /* who forked the helper; 0: not checked */
  char **argv;
  char **envp;
};

/* The defaults: uid and gid 65534, cwd /, nothing else. */
void spec_init(struct spec *spec);

/* Sets one FIELD_* option (not arg or env) from its text; -1 with errno EINVAL or E2BIG. */
int spec_set(struct spec *spec, const char *field, const char *value);

/* Whether spec is whole: a terminal has both sizes and stdin. 0, or -1 with errno EINVAL. */
int spec_check(const struct spec *spec);

/*
 * Runs the helper for spec; its fds 1-3 (and 0 with stdin) are in place. Returns its exit code.
 * await_go, when not NULL, is called once init is building the job's namespaces, with the
 * helper's signalfd (signals blocked); the job's command runs only after it returned (it
 * exits the helper to run nothing).
 */
int run_helper(const struct spec *spec, void (*await_go)(const struct spec *, int sigfd));

/*
 * Dies with its parent: SIGKILL on parent death, then closes the race of a
 * parent already gone unless expected is 0. NULL, or the failed call (errno set).
 */
const char *die_with_parent(pid_t expected);

/* The NUL-terminated strings of buf as a NULL-terminated array; NULL (errno set) if malformed. */
char **split_strings(char *buf, size_t len, size_t *count);

/* jobexec --serve: see fork-server.c. */
int serve(const char *socket_path, pid_t parent);

#endif
