/* See report.h. */
#include "report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "protocol.h"

static int report_fd = FD_STATUS;

void report_to(int fd) { report_fd = fd; }

/* Atomic below PIPE_BUF; a line too long is cut, keeping its newline. */
void report(const char *fmt, ...) {
  char line[LIMIT_LINE];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = sizeof line - 2;
  line[n++] = '\n';
  /* Nothing to do if the reader has gone: the death signal ends us anyway. */
  ssize_t unused = write(report_fd, line, (size_t)n);
  (void)unused;
}

/* _exit: a child between fork and exec must not run the parent's atexit handlers. */
_Noreturn void fail(const char *stage, const char *syscall_name) {
  report(STATUS_ERROR " %s %s %d", stage, syscall_name, errno);
  _exit(EXIT_HELPER_FAILED);
}
