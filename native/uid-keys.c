/*
 * jobexec --clear-keys UID: empties the kernel keyrings that belong to UID
 * itself, not to any process: its user keyring (@u), its user session
 * keyring (@us) and its persistent keyring. They outlive every process of the
 * uid, so a uid given to a new owner (one a removed state directory held)
 * would otherwise hand it the previous owner's keys. The server runs this
 * as root before a uid's first job for its owner (src/job/owner-ids.ts).
 *
 * Exit codes: 0 cleared; 125 anything else, a message on stderr naming the
 * step and errno.
 */
#define _GNU_SOURCE
#include "uid-keys.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <linux/keyctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { EXIT_CLEARED = 0, EXIT_CLEAR_FAILED = 125 };

static int failed(const char *step) {
  fprintf(stderr, "jobexec --clear-keys: %s: %s\n", step, strerror(errno));
  return EXIT_CLEAR_FAILED;
}

int clear_keys_main(int argc, char **argv) {
  char *end = NULL;
  errno = 0;
  long uid = argc == 3 ? strtol(argv[2], &end, 10) : -1;
  if (argc != 3 || errno != 0 || end == argv[2] || *end != '\0' || uid <= 0 || uid >= 65534) {
    fprintf(stderr, "usage: jobexec --clear-keys UID (1-65533)\n");
    return EXIT_CLEAR_FAILED;
  }
  /* The uid's own keyrings are reached only as that uid; a fresh session
   * keyring first, so that nothing of the caller's session is touched. */
  if (setgroups(0, NULL) != 0) return failed("setgroups");
  if (setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) != 0) return failed("setresgid");
  if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) return failed("setresuid");
  if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) == -1) return failed("join session keyring");
  if (syscall(SYS_keyctl, KEYCTL_CLEAR, KEY_SPEC_USER_KEYRING) == -1) return failed("clear @u");
  if (syscall(SYS_keyctl, KEYCTL_CLEAR, KEY_SPEC_USER_SESSION_KEYRING) == -1)
    return failed("clear @us");
  long persistent = syscall(SYS_keyctl, KEYCTL_GET_PERSISTENT, -1, KEY_SPEC_SESSION_KEYRING);
  if (persistent == -1) {
    /* A kernel built without persistent keyrings has none to clear. */
    if (errno != EOPNOTSUPP && errno != ENOSYS) return failed("get persistent keyring");
  } else if (syscall(SYS_keyctl, KEYCTL_CLEAR, persistent) == -1) {
    return failed("clear the persistent keyring");
  }
  return EXIT_CLEARED;
}
