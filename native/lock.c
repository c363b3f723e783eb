/*
 * jobexec --lock [--wait]: takes flock(LOCK_EX) on its fd 3 and exits; without
 * --wait it does not wait (LOCK_NB) for another holder.
 * Node has no flock(2); the server opens its state directory's lock file and
 * passes that descriptor as fd 3 (src/isolation/state-dir.ts).
 *
 * A flock lock belongs to the open file description, not to the process
 * (flock(2): "locks created by flock() are associated with an open file
 * description"): the server's descriptor shares this one's description, so
 * the lock stays held after this process exits, until the server closes its
 * descriptor or dies.
 *
 * Exit codes:
 *   0    locked
 *   1    another open file description holds the lock (EWOULDBLOCK; not with --wait)
 *   125  anything else; a message on stderr names the syscall and errno
 */
#define _GNU_SOURCE
#include "lock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>

enum { LOCK_FD = 3, EXIT_LOCKED = 0, EXIT_HELD = 1, EXIT_LOCK_FAILED = 125 };

int lock_main(int argc, char **argv) {
  int wait = argc == 3 && strcmp(argv[2], "--wait") == 0;
  if (argc != 2 && !wait) {
    fprintf(stderr, "usage: jobexec --lock [--wait] (the lock file open on fd 3)\n");
    return EXIT_LOCK_FAILED;
  }
  if (flock(LOCK_FD, wait ? LOCK_EX : LOCK_EX | LOCK_NB) == 0) return EXIT_LOCKED;
  if (errno == EWOULDBLOCK) return EXIT_HELD;
  fprintf(stderr, "jobexec: flock fd %d: %s\n", LOCK_FD, strerror(errno));
  return EXIT_LOCK_FAILED;
}
