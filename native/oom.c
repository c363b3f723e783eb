/* oom_score_adj of the calling process: see oom.h. */
#define _GNU_SOURCE
#include "oom.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int set_oom_score_adj(int value) {
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd == -1) return -1;
  char text[16];
  int len = snprintf(text, sizeof text, "%d", value);
  ssize_t n = write(fd, text, (size_t)len);
  close(fd);
  return n == len ? 0 : -1;
}
