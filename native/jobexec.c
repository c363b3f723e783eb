/*
 * jobexec: starts one job in fresh namespaces and cgroups, then stays as its
 * monitor. This file is the code between fork and exec (helper, init, job);
 * the fork server that forks helpers is fork-server.c, the words it all
 * speaks are in protocol.h, and reporting is report.c. Never run through a
 * shell.
 *
 *   jobexec --version
 *   jobexec --serve SOCKET --parent-pid N
 *   jobexec --lock [--wait]         (flock of fd 3, see lock.c)
 *   jobexec --clear-keys UID        (empties UID's own keyrings, see uid-keys.c)
 *   jobexec [--cgroup1-dir DIR]... [--cgroup2-dir DIR] [--private-dir DIR]...
 *           [--hostname NAME] [--uid N] [--gid N] [--cwd DIR] [--host-network]
 *           [--stdin [--tty-rows N --tty-cols N]] [--parent-pid N] -- COMMAND [ARG]...
 *
 * The last form (the direct mode) runs one helper; the fork server forks
 * one per launch request, whose fields are these options (protocol.h), and
 * fills the same struct spec from them.
 *
 * In the direct mode the job's environment arrives on fd 4 as NUL-terminated
 * NAME=VALUE strings, read to EOF before anything else (in a forked helper,
 * with the request); the helper itself runs with an empty
 * environment. It must never be the job's: this process is root, and the
 * dynamic loader acts on LD_PRELOAD, LD_AUDIT, ... before main() runs.
 * COMMAND is resolved on the job's PATH here and started with execve(2)
 * (glibc's execvp would run a file without a #! line through /bin/sh).
 *
 * cgroups: the job is in all of them before its first instruction. cgroup v2:
 * clone3(CLONE_INTO_CGROUP) into --cgroup2-dir (falling back to a
 * cgroup.procs write by the helper before it releases init). cgroup v1: init
 * joins each --cgroup1-dir itself, by writing "0" to its `tasks` file, before
 * it forks the job, and then enters a new cgroup namespace rooted there, so
 * that the job's /proc/self/cgroup reads "/" in every hierarchy rather than
 * the server's cgroup paths. A single thread moving itself is the one migration for
 * which the kernel skips the global cgroup_threadgroup_rwsem write lock (and
 * its RCU grace period), so it is far cheaper than writing init's pid to
 * cgroup.procs from the helper (docs/benchmarks.md). Any failed
 * join ends init before the job exists (fail closed).
 *
 * Process shape (the PID namespace's init is the job's reaper, see tini):
 *   fork server (jobexec --serve, one per server process; forks and reaps helpers)
 *   `- helper (host PID namespace; relays output, forwards signals, reports)
 *     `- init  (clone3: PID 1 of new PID, mount, net, UTS and IPC namespaces,
 *          |      then a cgroup namespace; a fresh anonymous session keyring)
 *          `- job (PID 2, its own session and process group, its owner's uid/gid,
 *                  the seccomp filter of syscall-filter.c)
 *
 * Status channel, fd 3, one line per event, written only by the helper:
 *   started PID                    COMMAND was exec'd (PID: init's host pid)
 *   error STAGE SYSCALL ERRNO      the helper failed; the job did not run or
 *                                  was killed; STAGE is a STAGE_* of protocol.h
 *   exit CODE                      the job exited by itself with CODE
 *   signal N                       the job was ended by signal N
 * Exactly one of error/exit/signal is the last line. "The helper failed" is
 * therefore never confused with "the job exited 125".
 *
 * Exit codes of the helper itself (the status line is authoritative):
 *   0    the job ran and its end was reported (exit or signal line)
 *   125  the helper failed (an error line says where and why)
 *
 * Stdout and stderr of the job are real pipes (pipe2), so that
 * `echo x > /dev/stdout` works; the helper splices them to its own fds 1 and 2
 * and exits only once the job has ended and both pipes reached EOF. (Forked
 * by the fork server, its fds 1-3 are Unix stream connections to the
 * server, not pipes; splice works the same.)
 *
 * Input (--stdin): the helper's fd 0 carries the job's stdin. Without a
 * terminal the job's fd 0 is a pipe the helper splices fd 0 into, and EOF
 * on fd 0 closes it. Without --stdin the job's fd 0 is /dev/null.
 *
 * A terminal (--tty-rows/--tty-cols, with --stdin): init opens /dev/ptmx of
 * the job's own devpts instance (make_dev), so the pty exists only in the
 * job's mount namespace and no host terminal is involved; it sets the window
 * size, chowns the slave to the job's user, and passes the master to the
 * helper over a socketpair (SCM_RIGHTS). The job is a session leader with
 * the slave as controlling terminal and as fds 0-2; its output is the one
 * merged stream on fd 1. The helper copies fd 0 to the master (EOF on fd 0
 * writes the terminal's VEOF character, as a user typing it would) and the
 * master to fd 1, and acts on control lines from the server on fd 3
 * (protocol.h): TIOCSWINSZ, and TIOCSIG for an interrupt.
 *
 * Flow control: every relay holds at most one buffer (or, splicing, none)
 * and reads its source only once its target took what it had, so a job
 * that does not read its input stops the helper reading fd 0, and then the
 * server's writes wait on the socket's buffers. The helper holds the stdin
 * pipe's read end (or a slave of the terminal) itself until init has
 * ended: a job that closes its input is one that does not read it, and
 * only the job's end, which the status channel reports, ends the server's
 * wait, never a write failing first as the job dies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <linux/close_range.h>
#include <linux/keyctl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "helper.h"
#include "lock.h"
#include "oom.h"
#include "uid-keys.h"
#include "protocol.h"
#include "report.h"
#include "syscall-filter.h"

#ifndef JOBEXEC_SOURCE_SHA256
#define JOBEXEC_SOURCE_SHA256 "unknown"
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* After init has been reaped, relaying stops once the pipes stay idle this long: only a
 * descriptor smuggled out of the (dead) namespace could still hold them open. */
enum { DRAIN_IDLE_MS = 2000 };

/* Past the output cap a pipe is drained at most about this often: see start_dropping. */
enum { DROP_PACE_MS = 10 };

/* Descriptors shared between the stages. r/w: read and write ends; -1 when unused. */
struct fds {
  int out[2], err[2]; /* the job's stdout and stderr pipes (none with a terminal) */
  int in[2];          /* the job's stdin pipe (--stdin without a terminal) */
  int tty_sock[2];    /* init -> helper: the terminal's master (SCM_RIGHTS) */
  int report[2];      /* init -> helper: one line per event */
  int release[2];     /* helper -> init: one byte once the cgroups are joined */
  int begin[2];       /* helper -> init: one byte to run the job (served: once the server's go came) */
  int sigfd;          /* helper's signalfd */
  int tty_slave;      /* init: the terminal's slave, for the job; the helper: one of its own */
};

/* The strings of main's argv, which /proc/PID/cmdline shows: see hide_cmdline. */
static char *cmdline_start;
static size_t cmdline_len;

/* ---- the job's options ----------------------------------------------- */

/* A decimal in [0, max], or -1 with errno EINVAL. */
static long parse_number(const char *text, long max) {
  char *end = NULL;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < 0 || value > max) {
    errno = EINVAL;
    return -1;
  }
  return value;
}

void spec_init(struct spec *spec) {
  memset(spec, 0, sizeof *spec);
  spec->uid = 65534;
  spec->gid = 65534;
  spec->cwd = "/";
}

int spec_set(struct spec *spec, const char *field, const char *value) {
  long number = 0;
  if (strcmp(field, FIELD_CGROUP1_DIR) == 0) {
    if (spec->n_cgroups == LIMIT_MAX_CGROUPS) {
      errno = E2BIG;
      return -1;
    }
    spec->cgroup1_dirs[spec->n_cgroups++] = value;
  } else if (strcmp(field, FIELD_CGROUP2_DIR) == 0) {
    spec->cgroup2_dir = value;
  } else if (strcmp(field, FIELD_PRIVATE_DIR) == 0) {
    if (spec->n_private_dirs == LIMIT_MAX_PRIVATE_DIRS) {
      errno = E2BIG;
      return -1;
    }
    spec->private_dirs[spec->n_private_dirs++] = value;
  } else if (strcmp(field, FIELD_HOSTNAME) == 0) {
    spec->hostname = value;
  } else if (strcmp(field, FIELD_CWD) == 0) {
    spec->cwd = value;
  } else if (strcmp(field, FIELD_UID) == 0 && (number = parse_number(value, INT_MAX)) >= 0) {
    spec->uid = (uid_t)number;
  } else if (strcmp(field, FIELD_GID) == 0 && (number = parse_number(value, INT_MAX)) >= 0) {
    spec->gid = (gid_t)number;
  } else if (strcmp(field, FIELD_HOST_NETWORK) == 0 && (number = parse_number(value, 1)) >= 0) {
    spec->host_network = (int)number;
  } else if (strcmp(field, FIELD_STDIN) == 0 && (number = parse_number(value, 1)) >= 0) {
    spec->stdin_open = (int)number;
  } else if (strcmp(field, FIELD_TTY_ROWS) == 0 &&
             (number = parse_number(value, LIMIT_MAX_TTY_DIMENSION)) > 0) {
    spec->tty_rows = (unsigned)number;
  } else if (strcmp(field, FIELD_TTY_COLS) == 0 &&
             (number = parse_number(value, LIMIT_MAX_TTY_DIMENSION)) > 0) {
    spec->tty_cols = (unsigned)number;
  } else {
    errno = EINVAL; /* an unknown field, or a number parse_number refused */
    return -1;
  }
  return 0;
}

int spec_check(const struct spec *spec) {
  if ((spec->tty_rows == 0) != (spec->tty_cols == 0) || (spec->tty_rows != 0 && !spec->stdin_open)) {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

/* Whether the job gets a terminal. */
static int has_tty(const struct spec *spec) { return spec->tty_rows != 0; }

char **split_strings(char *buf, size_t len, size_t *count) {
  if (len > 0 && buf[len - 1] != '\0') {
    errno = EINVAL;
    return NULL;
  }
  size_t n = 0;
  for (size_t i = 0; i < len; i++) n += buf[i] == '\0';
  char **out = calloc(n + 1, sizeof *out);
  if (out == NULL) return NULL;
  for (size_t i = 0, k = 0; i < len; i += strlen(buf + i) + 1) out[k++] = buf + i;
  *count = n;
  return out;
}

/* The direct mode's command line; --version and --serve are handled by main. */
static void parse_args(int argc, char **argv, struct spec *spec) {
  static const struct option options[] = {
      {FIELD_CGROUP1_DIR, required_argument, NULL, 0},
      {FIELD_CGROUP2_DIR, required_argument, NULL, 0},
      {FIELD_PRIVATE_DIR, required_argument, NULL, 0},
      {FIELD_HOSTNAME, required_argument, NULL, 0},
      {FIELD_UID, required_argument, NULL, 0},
      {FIELD_GID, required_argument, NULL, 0},
      {FIELD_CWD, required_argument, NULL, 0},
      {FIELD_HOST_NETWORK, no_argument, NULL, 0},
      {FIELD_STDIN, no_argument, NULL, 0},
      {FIELD_TTY_ROWS, required_argument, NULL, 0},
      {FIELD_TTY_COLS, required_argument, NULL, 0},
      {"parent-pid", required_argument, NULL, 'p'},
      {NULL, 0, NULL, 0},
  };
  spec_init(spec);
  opterr = 0;
  int opt, index = 0;
  while ((opt = getopt_long(argc, argv, "+", options, &index)) != -1) {
    if (opt == 'p') {
      long pid = parse_number(optarg, INT_MAX);
      if (pid < 0) fail(STAGE_ARGS, "parent-pid");
      spec->parent_pid = (pid_t)pid;
    } else if (opt == 0) {
      const char *name = options[index].name;
      if (spec_set(spec, name, optarg != NULL ? optarg : "1") != 0) fail(STAGE_ARGS, name);
    } else {
      errno = EINVAL;
      fail(STAGE_ARGS, "getopt");
    }
  }
  if (optind >= argc) {
    errno = EINVAL;
    fail(STAGE_ARGS, "argv");
  }
  if (spec_check(spec) != 0) fail(STAGE_ARGS, FIELD_TTY_ROWS);
  spec->argv = &argv[optind];
}

/* Reads the job's environment from FD_ENV (NUL-terminated entries) to EOF. */
static void read_env(struct spec *spec) {
  size_t cap = 4096, len = 0, count = 0;
  char *buf = malloc(cap);
  if (buf == NULL) fail(STAGE_ARGS, "malloc");
  for (;;) {
    if (len == cap) {
      if (cap >= LIMIT_MAX_ENV_BYTES) {
        errno = E2BIG;
        fail(STAGE_ARGS, "read");
      }
      char *grown = realloc(buf, cap *= 2);
      if (grown == NULL) fail(STAGE_ARGS, "realloc");
      buf = grown;
    }
    ssize_t n = read(FD_ENV, buf + len, cap - len);
    if (n == -1 && errno == EINTR) continue;
    if (n == -1) fail(STAGE_ARGS, "read");
    if (n == 0) break;
    len += (size_t)n;
  }
  close(FD_ENV);
  spec->envp = split_strings(buf, len, &count);
  if (spec->envp == NULL) fail(STAGE_ARGS, errno == EINVAL ? "env" : "calloc");
}

/* ---- helper: before the clone ---------------------------------------- */

const char *die_with_parent(pid_t expected) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return "prctl";
  if (expected != 0 && getppid() != expected) {
    errno = ESRCH;
    return "getppid";
  }
  return NULL;
}

/* Dies with whoever started it (the server, or the fork server). */
static void guard_parent(const struct spec *spec) {
  if (fcntl(FD_STATUS, F_GETFD) == -1) _exit(EXIT_HELPER_FAILED); /* no channel to report on */
  const char *call = die_with_parent(spec->parent_pid);
  if (call != NULL) fail(STAGE_SETUP, call);
}

static void set_nonblock(int fd, const char *stage) {
  int flags = fcntl(fd, F_GETFL);
  if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) fail(stage, "fcntl");
}

static void make_pipes(const struct spec *spec, struct fds *fds) {
  int *unused[] = {&fds->out[0], &fds->out[1], &fds->err[0],      &fds->err[1],
                   &fds->in[0],  &fds->in[1],  &fds->tty_sock[0], &fds->tty_sock[1],
                   &fds->tty_slave};
  for (size_t i = 0; i < sizeof unused / sizeof unused[0]; i++) *unused[i] = -1;
  if (pipe2(fds->report, O_CLOEXEC) != 0 || pipe2(fds->release, O_CLOEXEC) != 0 ||
      pipe2(fds->begin, O_CLOEXEC) != 0)
    fail(STAGE_SETUP, "pipe2");
  if (has_tty(spec)) {
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds->tty_sock) != 0)
      fail(STAGE_SETUP, "socketpair");
  } else {
    if (pipe2(fds->out, O_CLOEXEC) != 0 || pipe2(fds->err, O_CLOEXEC) != 0)
      fail(STAGE_SETUP, "pipe2");
    if (spec->stdin_open && pipe2(fds->in, O_CLOEXEC) != 0) fail(STAGE_SETUP, "pipe2");
  }
  /* Our fds 1 and 2 are the server's pipes: never block the relay on them; nor on fd 0. */
  for (int fd = spec->stdin_open ? 0 : 1; fd <= 2; fd++) set_nonblock(fd, STAGE_SETUP);
}

/* Closes fd unless it is unused (-1), and marks it so. */
static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Signals are blocked from here on and read from a signalfd; the child inherits the mask. */
static void block_signals(struct fds *fds) {
  sigset_t set;
  sigfillset(&set);
  if (sigprocmask(SIG_SETMASK, &set, NULL) != 0) fail(STAGE_SETUP, "sigprocmask");
  sigemptyset(&set);
  const int watched[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof watched / sizeof watched[0]; i++) sigaddset(&set, watched[i]);
  fds->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fds->sigfd == -1) fail(STAGE_SETUP, "signalfd");
}

/* ---- the clone and the cgroups --------------------------------------- */

/* struct clone_args as of Linux 5.7 (CLONE_ARGS_SIZE_VER2), spelt out to avoid header clashes. */
struct clone3_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};

static pid_t clone_into(uint64_t flags, int cgroup_fd) {
  struct clone3_args args;
  memset(&args, 0, sizeof args);
  args.flags = flags;
  args.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = (uint64_t)cgroup_fd;
  }
  return (pid_t)syscall(SYS_clone3, &args, sizeof args);
}

/* Writes pid into DIR/FILE (cgroup.procs, or tasks with pid 0 for the calling thread). */
static int join_cgroup(const char *dir, const char *file, pid_t pid) {
  char path[PATH_MAX], text[32];
  if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd == -1) return -1;
  int n = snprintf(text, sizeof text, "%d", (int)pid);
  int rc = write(fd, text, (size_t)n) == n ? 0 : -1;
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

/* Kills and reaps a child that must not run, keeping errno for the report. */
static void discard_child(pid_t pid) {
  int saved = errno;
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) == -1 && errno == EINTR) {
  }
  errno = saved;
}

static _Noreturn void run_init(const struct spec *spec, struct fds *fds);

/*
 * clone3 into new namespaces, on cgroup v2 straight into the job's cgroup (or
 * a cgroup.procs write if clone3 refuses it), and only then releases the
 * child. A failed write kills it.
 */
static pid_t start_init(const struct spec *spec, struct fds *fds) {
  uint64_t flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
  if (!spec->host_network) flags |= CLONE_NEWNET;
  int cgroup_fd = -1;
  if (spec->cgroup2_dir != NULL) {
    cgroup_fd = open(spec->cgroup2_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd == -1) fail(STAGE_CGROUP, "open");
  }
  pid_t pid = clone_into(flags, cgroup_fd);
  int joined_v2 = cgroup_fd >= 0;
  if (pid == -1 && cgroup_fd >= 0) {
    /* Older kernels or a refusing cgroup: fall back to a cgroup.procs write, as crun does. */
    pid = clone_into(flags, -1);
    joined_v2 = 0;
  }
  /* TODO(old kernels): no fork+unshare fallback when clone3 itself is missing (Linux < 5.3). */
  if (pid == -1) fail(STAGE_CLONE, "clone3");
  if (pid == 0) run_init(spec, fds);
  if (cgroup_fd >= 0) close(cgroup_fd);
  if (!joined_v2 && spec->cgroup2_dir != NULL &&
      join_cgroup(spec->cgroup2_dir, "cgroup.procs", pid) != 0) {
    discard_child(pid);
    fail(STAGE_CGROUP, "write");
  }
  close_fd(&fds->out[1]);
  close_fd(&fds->err[1]);
  /* in[0] stays: see "Flow control" above. */
  close_fd(&fds->tty_sock[1]);
  close(fds->report[1]);
  close(fds->release[0]);
  if (write(fds->release[1], "go", 1) != 1) {
    discard_child(pid);
    fail(STAGE_CLONE, "write");
  }
  close(fds->release[1]);
  close(fds->begin[0]);
  return pid;
}

/* ---- init: PID 1 of the job's namespaces ----------------------------- */

/*
 * init shares its memory image with the fork server (or the direct mode), so
 * the job would read that command line in /proc/1/cmdline: the helper
 * socket's path in the state directory and the server's pid. Blank it (main
 * works on copies of the strings).
 */
static void hide_cmdline(void) {
  static const char name[] = "jobexec";
  memset(cmdline_start, 0, cmdline_len);
  if (cmdline_len >= sizeof name) memcpy(cmdline_start, name, sizeof name);
}

static void bring_up_loopback(void) {
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock == -1) fail(STAGE_NET, "socket");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) fail(STAGE_NET, "ioctl");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) fail(STAGE_NET, "ioctl");
  close(sock);
}

/*
 * A fresh fstype at path, and what the host had mounted there (with all below
 * it) detached: not only covered, but gone from the job's mount table.
 * NULL, or the failed call (errno set).
 */
static const char *mount_fresh(const char *path, const char *fstype, unsigned long flags,
                               const char *options) {
  if (umount2(path, MNT_DETACH) != 0 && errno != EINVAL) return "umount2";
  return mount(fstype, path, fstype, flags, options) == 0 ? NULL : "mount";
}

/*
 * The job's /dev, as runc's default: a tmpfs with the standard nodes only (not
 * the host's disks, consoles or terminals), a devpts instance of its own and a
 * private /dev/shm (the IPC namespace does not cover POSIX shared memory). init
 * is root in the host's user namespace, so it makes the nodes itself (numbers
 * from the kernel's Documentation/admin-guide/devices.txt).
 */
static void make_dev(void) {
  static const struct {
    const char *name;
    unsigned major, minor;
  } nodes[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
               {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  static const char *const links[][2] = {
      {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
      {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"}};
  const char *call = mount_fresh("/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k");
  if (call != NULL) fail(STAGE_MOUNT, call);
  if (chdir("/dev") != 0) fail(STAGE_MOUNT, "chdir");
  umask(0); /* the modes below are the nodes' own; the job sets its own umask */
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++)
    if (mknod(nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) != 0)
      fail(STAGE_MOUNT, "mknod");
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlink(links[i][1], links[i][0]) != 0) fail(STAGE_MOUNT, "symlink");
  if (mkdir("pts", 0755) != 0 || mkdir("shm", 01777) != 0) fail(STAGE_MOUNT, "mkdir");
  if (mount("devpts", "pts", "devpts", MS_NOSUID | MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620") != 0 ||
      mount("tmpfs", "shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
    fail(STAGE_MOUNT, "mount");
  /* Also init's own: it must not keep the server's working directory. */
  if (chdir("/") != 0) fail(STAGE_MOUNT, "chdir");
}

/* Private propagation first: without it a mount made inside leaks to a shared host mount. */
static void make_mounts(const struct spec *spec) {
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail(STAGE_MOUNT, "mount");
  const char *call = mount_fresh("/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  if (call != NULL) fail(STAGE_MOUNT, call);
  /* The host's cgroup tree lists every job of every user and their host pids: hide it
   * (after the v1 joins, which write below it). */
  call = mount_fresh("/sys/fs/cgroup", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                     "mode=0555,size=4k");
  if (call != NULL && errno != ENOENT) fail(STAGE_MOUNT, call);
  make_dev();
  /* Scratch space of its own over every world-writable host directory the server
   * found (/tmp and /var/tmp among them, src/isolation/private-dirs.ts): there,
   * one job could plant files or Unix sockets for another. tmpfs pages are
   * charged to the job's memory cgroup. A directory gone since is nothing to hide. */
  for (int i = 0; i < spec->n_private_dirs; i++) {
    call = mount_fresh(spec->private_dirs[i], "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    if (call != NULL && errno != ENOENT) fail(STAGE_MOUNT, call);
  }
}

/* Sends fd over the socket sock as SCM_RIGHTS, with one byte of data; -1 with errno. */
static int send_fd(int sock, int fd) {
  char byte = 't';
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                       .msg_controllen = sizeof control.buf};
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
  ssize_t n;
  while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL)) == -1 && errno == EINTR) {
  }
  return n == 1 ? 0 : -1;
}

/*
 * The job's terminal, made by init inside the job's namespaces: a pty of
 * the devpts instance make_dev mounted (so the job sees no host pty, and
 * the host none of its), of the requested size before anything runs on it,
 * its slave owned by the job's user. TIOCGPTPEER opens the slave from the
 * master itself, with no path lookup. The master goes to the helper; init
 * keeps the slave for the job (fds->tty_slave).
 */
static void make_terminal(const struct spec *spec, struct fds *fds) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master == -1) fail(STAGE_TTY, "open");
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) != 0) fail(STAGE_TTY, "ioctl(TIOCSPTLCK)");
  struct winsize size = {.ws_row = (unsigned short)spec->tty_rows,
                         .ws_col = (unsigned short)spec->tty_cols};
  if (ioctl(master, TIOCSWINSZ, &size) != 0) fail(STAGE_TTY, "ioctl(TIOCSWINSZ)");
  fds->tty_slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fds->tty_slave == -1) fail(STAGE_TTY, "ioctl(TIOCGPTPEER)");
  if (fchown(fds->tty_slave, spec->uid, spec->gid) != 0) fail(STAGE_TTY, "fchown");
  if (send_fd(fds->tty_sock[1], master) != 0) fail(STAGE_TTY, "sendmsg");
  close(master);
  close_fd(&fds->tty_sock[1]);
}

/* The value of PATH in the job's environment, or NULL. */
static const char *job_path(char **envp) {
  for (; *envp != NULL; envp++)
    if (strncmp(*envp, "PATH=", 5) == 0) return *envp + 5;
  return NULL;
}

/* Resolves argv[0] on the job's PATH and execve()s it; returns only on failure. */
static void exec_command(char **argv, char **envp) {
  const char *name = argv[0];
  if (strchr(name, '/') != NULL) {
    execve(name, argv, envp);
    return;
  }
  const char *path = job_path(envp);
  if (path == NULL) path = "/usr/local/bin:/usr/bin:/bin";
  int saw_eacces = 0;
  for (const char *p = path;; p++) {
    const char *end = strchrnul(p, ':');
    char full[PATH_MAX];
    int len = end == p ? snprintf(full, sizeof full, "%s", name)
                       : snprintf(full, sizeof full, "%.*s/%s", (int)(end - p), p, name);
    if (len > 0 && len < (int)sizeof full) {
      execve(full, argv, envp);
      if (errno == EACCES) saw_eacces = 1;
      else if (errno != ENOENT && errno != ENOTDIR) return;
    }
    p = end;
    if (*p == '\0') break;
  }
  errno = saw_eacces ? EACCES : ENOENT;
}

/*
 * The job's fds 0-2: the terminal's slave for all three (the controlling
 * terminal of the session it leads), or its pipes, with fd 0 the stdin pipe
 * or init's /dev/null.
 */
static void job_stdio(const struct spec *spec, const struct fds *fds) {
  if (fds->tty_slave >= 0) {
    /* After setsid: a session leader without a controlling terminal acquires this one,
     * and its process group is the terminal's foreground group. */
    if (ioctl(fds->tty_slave, TIOCSCTTY, 0) != 0) fail(STAGE_TTY, "ioctl(TIOCSCTTY)");
    for (int fd = 0; fd <= 2; fd++)
      if (dup2(fds->tty_slave, fd) == -1) fail(STAGE_INIT, "dup2");
    return; /* the slave is the job's user's already (make_terminal) */
  }
  if (dup2(fds->out[1], 1) == -1 || dup2(fds->err[1], 2) == -1) fail(STAGE_INIT, "dup2");
  if (fds->in[0] >= 0 && dup2(fds->in[0], 0) == -1) fail(STAGE_INIT, "dup2");
  /* Pipes belong to their creator (mode 0600): without this, reopening
   * /dev/stdout (/proc/self/fd/1) as the job's user fails with EACCES. */
  for (int fd = fds->in[0] >= 0 ? 0 : 1; fd <= 2; fd++)
    if (fchown(fd, spec->uid, spec->gid) != 0) fail(STAGE_CREDS, "fchown");
}

/* The job: drop privileges, re-arm the death signal, clean fds and signals, filter, exec. */
static _Noreturn void run_job(const struct spec *spec, const struct fds *fds, int exec_fd) {
  report_to(exec_fd);
  if (setsid() == -1) fail(STAGE_CREDS, "setsid");
  job_stdio(spec, fds);
  if (setgroups(0, NULL) != 0) fail(STAGE_CREDS, "setgroups");
  if (setresgid(spec->gid, spec->gid, spec->gid) != 0) fail(STAGE_CREDS, "setresgid");
  if (setresuid(spec->uid, spec->uid, spec->uid) != 0) fail(STAGE_CREDS, "setresuid");
  /* No regaining privileges through setuid or file-capability binaries of the host. */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(STAGE_CREDS, "prctl");
  const char *call = die_with_parent(1); /* a uid change cleared it */
  if (call != NULL) fail(STAGE_CREDS, call);
  if (chdir(spec->cwd) != 0) fail(STAGE_CWD, "chdir");
  /* Files a job creates are its owner's alone unless it says otherwise.
   * TODO(api): a client-chosen umask needs a field in the launch request. */
  umask(077);
  /* Only 0-2 survive exec; the exec pipe stays usable until then. */
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) fail(STAGE_INIT, "close_range");
  for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL); /* SIGKILL/SIGSTOP: EINVAL, fine */
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) fail(STAGE_INIT, "sigprocmask");
  if ((call = load_job_filter()) != NULL) fail(STAGE_SECCOMP, call); /* last before exec */
  exec_command(spec->argv, spec->envp);
  fail(STAGE_EXEC, "execve");
}

/*
 * Forks the job and learns whether its exec succeeded from a CLOEXEC pipe:
 * EOF without a record means execve() closed it.
 */
static pid_t fork_job(const struct spec *spec, struct fds *fds) {
  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) fail(STAGE_INIT, "pipe2");
  pid_t job = fork();
  if (job == -1) fail(STAGE_INIT, "fork");
  if (job == 0) {
    close(exec_pipe[0]);
    run_job(spec, fds, exec_pipe[1]);
  }
  close(exec_pipe[1]);
  close_fd(&fds->out[1]);
  close_fd(&fds->err[1]);
  close_fd(&fds->in[0]);
  /* Only the job holds the slave: once it and its children are gone, the master reads EOF. */
  close_fd(&fds->tty_slave);
  char record[LIMIT_LINE];
  ssize_t n;
  while ((n = read(exec_pipe[0], record, sizeof record - 1)) == -1 && errno == EINTR) {
  }
  close(exec_pipe[0]);
  if (n < 0) fail(STAGE_INIT, "read");
  if (n > 0) {
    /* Pass the job's failure up unchanged, then go: the namespace dies with us. */
    ssize_t unused = write(fds->report[1], record, (size_t)n);
    (void)unused;
    _exit(EXIT_HELPER_FAILED);
  }
  report(STATUS_STARTED);
  return job;
}

/*
 * Reaps every child (orphans re-parent to us) and forwards signals to the
 * job's process group (or, when queued with WHOM_MAIN or WHOM_ALL, to its
 * main process or to every process of the namespace); ends when the job does, which ends the
 * namespace and with it every process left.
 */
static _Noreturn void reap_and_forward(pid_t job) {
  sigset_t set;
  sigfillset(&set);
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&set, &info);
    if (sig == -1) continue;
    if (sig != SIGCHLD) {
      int whom = info.si_code == SI_QUEUE ? info.si_value.sival_int : WHOM_GROUP;
      /* kill(-1) in a PID namespace's init: every process of the namespace but init. */
      if (whom == WHOM_ALL) kill(-1, sig);
      else if (whom == WHOM_MAIN) kill(job, sig);
      else kill(-job, sig);
      continue;
    }
    int wstatus;
    pid_t pid;
    while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
      if (pid != job) continue;
      if (WIFEXITED(wstatus)) report(STATUS_EXIT " %d", WEXITSTATUS(wstatus));
      else report(STATUS_SIGNAL " %d", WTERMSIG(wstatus));
      _exit(0);
    }
  }
}

static _Noreturn void run_init(const struct spec *spec, struct fds *fds) {
  report_to(fds->report[1]);
  hide_cmdline();
  close_fd(&fds->out[0]);
  close_fd(&fds->err[0]);
  close_fd(&fds->in[1]);
  close_fd(&fds->tty_sock[0]);
  close(fds->report[0]);
  close(fds->release[1]);
  close(fds->begin[1]);
  close(fds->sigfd);
  close(FD_STATUS); /* the helper alone writes the status channel */
  /* Armed before waiting: if the helper dies first, the release pipe reads EOF. Its
   * parent is outside the new PID namespace (getppid() is 0): nothing to compare. */
  const char *call = die_with_parent(0);
  if (call != NULL) fail(STAGE_INIT, call);
  char go;
  if (read(fds->release[0], &go, 1) != 1) _exit(EXIT_HELPER_FAILED);
  close(fds->release[0]);
  for (int i = 0; i < spec->n_cgroups; i++)
    if (join_cgroup(spec->cgroup1_dirs[i], "tasks", 0) != 0) fail(STAGE_CGROUP, "write");
  /* Rooted at the cgroups just joined (v2: cloned into): the job's /proc/self/cgroup
   * shows neither the server's cgroup nor its group's name, which the state dir gives. */
  if (unshare(CLONE_NEWCGROUP) != 0) fail(STAGE_CGROUP, "unshare");
  make_mounts(spec);
  /* fd 0 may be the server's stdin connection, which only the helper reads: the job
   * gets the /dev/null of its own /dev unless it has stdin (a host one would read as
   * a path outside its mount namespace). */
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd == -1 || dup2(null_fd, 0) == -1) fail(STAGE_MOUNT, null_fd == -1 ? "open" : "dup2");
  if (null_fd != 0) close(null_fd);
  if (has_tty(spec)) make_terminal(spec, fds);
  if (!spec->host_network) bring_up_loopback();
  if (spec->hostname != NULL && sethostname(spec->hostname, strlen(spec->hostname)) != 0)
    fail(STAGE_UTS, "sethostname");
  /* Keyrings are not namespaced: without this the job inherits the server's
   * session keyring (and through it the keys of whoever started the server),
   * and every job shares one. The job, forked after, possesses the new one. */
  if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) == -1)
    fail(STAGE_KEYRING, "keyctl");
  /* The job inherits it: under memory pressure jobs go before the host's processes. */
  if (set_oom_score_adj(OOM_SCORE_ADJ_JOB) != 0) fail(STAGE_INIT, "write");
  /* Everything above is ours; the job's command runs only once the helper says so. EOF: the
   * helper died (or gave up waiting for the server's go), and nothing of the job ran. */
  char begin;
  if (read(fds->begin[0], &begin, 1) != 1) _exit(EXIT_HELPER_FAILED);
  close(fds->begin[0]);
  pid_t job = fork_job(spec, fds);
  reap_and_forward(job);
}

/* ---- helper: relay and report ---------------------------------------- */

/* Bytes one copying relay holds at most (the pty's relays: splice needs a pipe on one side). */
enum { COPY_BUF = 1 << 16 };

/*
 * One descriptor relayed to another without blocking: spliced when one of
 * them is a pipe, else through a buffer of its own that is refilled only
 * once `to` took all of it. Either way nothing is read from `from` while
 * `to` is full: this is the flow control of the job's output and input.
 */
struct relay {
  int from, to; /* -1 until known (a terminal's master arrives from init) */
  int open;     /* `from` has not reached its end */
  int blocked;  /* `to` is full: wait for POLLOUT instead of POLLIN */
  int dropping; /* output: the server closed `to` (past the output cap, or gone): discard */
  int sink;     /* /dev/null while dropping (-1: read into a buffer instead) */
  int paced;    /* dropping, drained: not polled until the next poll returns */
  unsigned long long total; /* bytes read from the job's output, relayed or discarded */
  int input;    /* the job's input: when `to` is gone, close `from` (the server's writes fail) */
  int tty;      /* input to a terminal: its end writes the terminal's VEOF character */
  int done_eof; /* the end of `from` is read (and, tty, VEOF queued) */
  char *buf;    /* copying; NULL: splice */
  size_t len, off;
};

/* How a relay step ended: more to come, or the relay is over. */
enum { RELAY_OPEN = 1, RELAY_OVER = 0 };

/*
 * The server closes its end past the output cap: from then on the job's bytes
 * are discarded here without waking the server, spliced into /dev/null (no
 * copy) from a pipe enlarged to 1 MiB (both best effort: else, and always for
 * a terminal's master, read into a buffer). Discarding at pipe speed still
 * cost this root process, in the server's cgroup, about a third of what the
 * job spent writing (freeing the pipe's pages), so the output is drained once
 * per DROP_PACE_MS: a job that goes on printing past its cap blocks on its
 * full pipe in between, and prints at most about 1 MiB per 10 ms (100 MiB/s)
 * from then on; it is never stopped.
 */
static void start_dropping(struct relay *r) {
  r->dropping = 1;
  r->len = r->off = 0;
  if (r->buf != NULL) return;
  r->sink = open("/dev/null", O_WRONLY | O_CLOEXEC);
  (void)fcntl(r->from, F_SETPIPE_SZ, 1 << 20);
}

/* `to` failed with errno: output discards from now on; input is over. */
static int target_gone(struct relay *r) {
  if (r->input) return RELAY_OVER;
  start_dropping(r);
  return RELAY_OPEN;
}

/* The end of a terminal's input: its VEOF character (^D unless the job changed it), queued. */
static void queue_veof(struct relay *r) {
  struct termios t;
  r->buf[0] = tcgetattr(r->to, &t) == 0 ? (char)t.c_cc[VEOF] : 4;
  r->len = 1;
  r->off = 0;
}

/* Splices what is available; RELAY_OVER at EOF or when the input's target is gone. */
static int pump_splice(struct relay *r) {
  for (;;) {
    ssize_t n;
    if (r->dropping && r->sink == -1) {
      char sink[4096];
      n = read(r->from, sink, sizeof sink);
    } else {
      n = splice(r->from, NULL, r->dropping ? r->sink : r->to, NULL,
                 r->dropping ? 1 << 20 : 1 << 16, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    }
    if (n > 0) {
      r->total += (unsigned long long)n;
      continue;
    }
    if (n == 0) return RELAY_OVER;
    if (errno == EINTR) continue;
    if (errno == EPIPE && !r->dropping) {
      if (target_gone(r) == RELAY_OVER) return RELAY_OVER;
      continue;
    }
    if (errno != EAGAIN) fail(STAGE_RELAY, r->dropping && r->sink == -1 ? "read" : "splice");
    /* EAGAIN: `from` is empty, or `to` is full if `from` still holds data. */
    int queued = 0;
    r->blocked = !r->dropping && ioctl(r->from, FIONREAD, &queued) == 0 && queued > 0;
    return RELAY_OPEN;
  }
}

/* Copies through the relay's buffer; RELAY_OVER at EOF (EIO: a master whose slaves are
 * all closed) or when the input's target is gone. */
static int pump_copy(struct relay *r) {
  for (;;) {
    while (r->off < r->len) {
      ssize_t n = write(r->to, r->buf + r->off, r->len - r->off);
      if (n > 0) {
        r->off += (size_t)n;
      } else if (errno == EAGAIN) {
        r->blocked = 1;
        return RELAY_OPEN;
      } else if (errno == EIO || errno == EPIPE) {
        if (target_gone(r) == RELAY_OVER) return RELAY_OVER;
      } else if (errno != EINTR) {
        fail(STAGE_RELAY, "write");
      }
    }
    r->len = r->off = 0;
    if (r->done_eof) return RELAY_OVER;
    ssize_t n = read(r->from, r->buf, COPY_BUF);
    if (n > 0) {
      r->total += (unsigned long long)n;
      if (!r->dropping) r->len = (size_t)n;
    } else if (n == 0 || errno == EIO) {
      r->done_eof = 1;
      if (!r->tty) return RELAY_OVER;
      queue_veof(r);
    } else if (errno == EAGAIN) {
      r->blocked = 0;
      return RELAY_OPEN;
    } else if (errno != EINTR) {
      fail(STAGE_RELAY, "read");
    }
  }
}

/* One step of a relay whose descriptors are ready. */
static int pump(struct relay *r) {
  r->blocked = 0;
  return r->buf != NULL ? pump_copy(r) : pump_splice(r);
}

/* A relay made ready to copy (its buffer, its descriptors non-blocking). */
static void start_copy(struct relay *r, int from, int to) {
  r->buf = malloc(COPY_BUF);
  if (r->buf == NULL) fail(STAGE_RELAY, "malloc");
  r->from = from;
  r->to = to;
  set_nonblock(from, STAGE_RELAY);
  set_nonblock(to, STAGE_RELAY);
}

/*
 * An input relay is over (the server ended it, or the helper is ending):
 * closing the stdin pipe gives the job its EOF. A terminal's master stays:
 * the output relay reads it.
 */
static void end_input(struct relay *r, struct fds *fds) {
  r->open = 0;
  close(0);
  close_fd(&fds->in[1]);
}

/* What the helper has learnt about init, for the final line. */
struct outcome {
  char final[LIMIT_LINE]; /* exit/signal/error line received from init */
  int init_done;
  int init_status;
  char pending[LIMIT_LINE]; /* partial report line */
  size_t pending_len;
};

static void read_reports(int fd, pid_t init, struct outcome *o, int *open_fd) {
  char buf[LIMIT_LINE];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n == -1 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    *open_fd = 0;
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    if (buf[i] != '\n') {
      if (o->pending_len < sizeof o->pending - 1) o->pending[o->pending_len++] = buf[i];
      continue;
    }
    o->pending[o->pending_len] = '\0';
    o->pending_len = 0;
    if (strcmp(o->pending, STATUS_STARTED) == 0) report(STATUS_STARTED " %d", (int)init);
    else snprintf(o->final, sizeof o->final, "%s", o->pending);
  }
}

static void handle_signals(int sigfd, pid_t init, struct outcome *o) {
  struct signalfd_siginfo info;
  while (read(sigfd, &info, sizeof info) == (ssize_t)sizeof info) {
    if (info.ssi_signo != SIGCHLD) {
      /* init forwards it; a queued one keeps its WHOM (fork-server.c handle_kill). */
      if (info.ssi_code == SI_QUEUE)
        sigqueue(init, (int)info.ssi_signo, (union sigval){.sival_int = info.ssi_int});
      else kill(init, (int)info.ssi_signo);
      continue;
    }
    int wstatus;
    if (!o->init_done && waitpid(init, &wstatus, WNOHANG) == init) {
      o->init_done = 1;
      o->init_status = wstatus;
    }
  }
}

/* Receives the descriptor init's send_fd sent: 1 (in *fd), 0 when init closed without one,
 * -1 with errno (EAGAIN: not yet). */
static int recv_fd(int sock, int *fd) {
  char byte;
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                       .msg_controllen = sizeof control.buf};
  ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n <= 0) return n == 0 ? 0 : -1;
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  if (cmsg == NULL || cmsg->cmsg_type != SCM_RIGHTS || cmsg->cmsg_len != CMSG_LEN(sizeof(int)))
    return 0;
  memcpy(fd, CMSG_DATA(cmsg), sizeof *fd);
  return 1;
}

/* Control lines from the server (protocol.h) on the status channel, for the terminal. */
struct control {
  int open;
  char line[LIMIT_LINE];
  size_t len;
};

/*
 * Acts on one control line. An interrupt is TIOCSIG on the master, which
 * the kernel turns into SIGINT to the terminal's foreground process group,
 * looked up under the terminal's lock: what the line discipline does for a
 * typed ^C, but regardless of the job's termios (raw mode, or VINTR
 * remapped) and without naming a pid that may have gone (a TIOCGPGRP then
 * kill could hit a reused group, and the pid is in another namespace).
 * Failures are not the job's end: they are ignored (the terminal may be
 * closing with the job).
 */
static void apply_control(const char *line, int master) {
  unsigned rows = 0, cols = 0;
  char extra;
  if (sscanf(line, CONTROL_RESIZE " %u %u%c", &rows, &cols, &extra) == 2 && rows > 0 &&
      cols > 0 && rows <= LIMIT_MAX_TTY_DIMENSION && cols <= LIMIT_MAX_TTY_DIMENSION) {
    struct winsize size = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    (void)ioctl(master, TIOCSWINSZ, &size);
  } else if (strcmp(line, CONTROL_INTERRUPT) == 0) {
    (void)ioctl(master, TIOCSIG, SIGINT);
  }
}

/* Reads what the server sent on fd 3; a socket (fork server and spawn alike). */
static void read_control(struct control *c, int master) {
  char buf[LIMIT_LINE];
  ssize_t n = recv(FD_STATUS, buf, sizeof buf, MSG_DONTWAIT);
  if (n == -1 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    c->open = 0; /* closed, or not a socket: no control */
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    if (buf[i] != '\n') {
      if (c->len < sizeof c->line - 1) c->line[c->len++] = buf[i];
      continue;
    }
    c->line[c->len] = '\0';
    c->len = 0;
    if (master >= 0) apply_control(c->line, master);
  }
}

/* The helper's relays: the job's stdout (its pipe or the terminal's master), stderr, input. */
enum { OUT, ERR, IN, N_RELAYS };

/*
 * poll() loop: relays the job's output and input, forwards signals, collects
 * init's reports and, with a terminal, receives its master and the server's
 * control lines. Done when init has been reaped and the output relays and
 * the report pipe are at EOF; the input does not hold the end up.
 */
static void relay_until_done(const struct spec *spec, struct fds *fds, pid_t init,
                             struct outcome *o) {
  struct relay relays[N_RELAYS];
  memset(relays, 0, sizeof relays);
  relays[OUT] = (struct relay){.from = fds->out[0], .to = 1, .open = 1};
  relays[ERR] = (struct relay){.from = fds->err[0], .to = 2, .open = !has_tty(spec)};
  relays[IN] = (struct relay){.from = has_tty(spec) ? -1 : 0, .to = fds->in[1],
                              .open = spec->stdin_open, .input = 1, .tty = has_tty(spec)};
  for (int i = 0; i < N_RELAYS; i++) relays[i].sink = -1;
  struct control control = {.open = has_tty(spec)};
  int report_open = 1, master = -1;
  if (fcntl(fds->report[0], F_SETFL, O_NONBLOCK) == -1) fail(STAGE_RELAY, "fcntl");
  for (int i = 0; i < N_RELAYS; i++)
    if (relays[i].open && relays[i].from >= 0) set_nonblock(relays[i].from, STAGE_RELAY);
  while (!o->init_done || relays[OUT].open || relays[ERR].open || report_open) {
    struct pollfd pfd[4 + N_RELAYS];
    pfd[0] = (struct pollfd){fds->sigfd, POLLIN, 0};
    pfd[1] = (struct pollfd){report_open ? fds->report[0] : -1, POLLIN, 0};
    pfd[2] = (struct pollfd){fds->tty_sock[0], POLLIN, 0};
    pfd[3] = (struct pollfd){control.open ? FD_STATUS : -1, POLLIN, 0};
    int pacing = 0;
    for (int i = 0; i < N_RELAYS; i++) {
      struct relay *r = &relays[i];
      pfd[4 + i] = (struct pollfd){-1, 0, 0};
      if (r->open && r->paced) pacing = 1;
      else if (r->open) pfd[4 + i] = r->blocked ? (struct pollfd){r->to, POLLOUT, 0}
                                                : (struct pollfd){r->from, POLLIN, 0};
    }
    /* Only an idle job side counts: waiting for the server to read is not idleness. */
    int idle_bound = o->init_done && !relays[OUT].blocked && !relays[ERR].blocked;
    int ready = poll(pfd, 4 + N_RELAYS, pacing ? DROP_PACE_MS : idle_bound ? DRAIN_IDLE_MS : -1);
    if (ready == -1) {
      if (errno == EINTR) continue;
      fail(STAGE_RELAY, "poll");
    }
    /* Any return ends a pace (early on another event: never starved). */
    for (int i = 0; i < N_RELAYS; i++) relays[i].paced = 0;
    if (ready == 0 && !pacing) break; /* init gone and the pipes idle: see DRAIN_IDLE_MS */
    if (pfd[0].revents) handle_signals(fds->sigfd, init, o);
    if (o->init_done) {
      /* Every process of the job is gone: the stdin pipe and the terminal are the
       * helper's alone, and the master reads EOF once drained. */
      close_fd(&fds->tty_slave);
      close_fd(&fds->in[0]);
    }
    /* Before the reports: init sends the master before it reports `started`, and the
     * server's control lines (after `started`) find it. */
    if (pfd[2].revents) {
      int got = recv_fd(fds->tty_sock[0], &master);
      int again = got == -1 && errno == EAGAIN;
      if (got == 1) {
        /* Its own slave, of the job's devpts instance (the master's): see "Flow control". */
        fds->tty_slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fds->tty_slave == -1) fail(STAGE_TTY, "ioctl(TIOCGPTPEER)");
        start_copy(&relays[OUT], master, 1);
        start_copy(&relays[IN], 0, master);
      } else if (!again) {
        relays[OUT].open = 0; /* init failed before its terminal was made: its report says why */
        if (relays[IN].open) end_input(&relays[IN], fds);
      }
      if (!again) close_fd(&fds->tty_sock[0]);
    }
    if (pfd[1].revents) read_reports(fds->report[0], init, o, &report_open);
    if (pfd[3].revents) read_control(&control, master);
    for (int i = 0; i < N_RELAYS; i++) {
      if (!pfd[4 + i].revents) continue;
      if (pump(&relays[i]) == RELAY_OPEN) {
        relays[i].paced = relays[i].dropping;
        continue;
      }
      if (relays[i].input) end_input(&relays[i], fds);
      relays[i].open = 0;
    }
  }
  /* What the job wrote, relayed or not: the server counts what it never received as dropped. */
  report(STATUS_OUTPUT " %llu %llu", relays[OUT].total, relays[ERR].total);
}

/* The last status line: init's own report, or how init died if it could not report. */
static int report_end(const struct outcome *o) {
  if (o->final[0] != '\0') {
    report("%s", o->final);
    return strncmp(o->final, STATUS_ERROR " ", sizeof STATUS_ERROR) == 0 ? EXIT_HELPER_FAILED : 0;
  }
  /* Killed before reporting (cgroup kill, SIGKILL): the job died with it. */
  if (WIFSIGNALED(o->init_status)) {
    report(STATUS_SIGNAL " %d", WTERMSIG(o->init_status));
    return 0;
  }
  report(STATUS_ERROR " " STAGE_INIT " waitpid %d", WEXITSTATUS(o->init_status));
  return EXIT_HELPER_FAILED;
}

int run_helper(const struct spec *spec, void (*await_go)(const struct spec *, int sigfd)) {
  struct fds fds;
  struct outcome outcome;
  memset(&outcome, 0, sizeof outcome);
  guard_parent(spec);
  make_pipes(spec, &fds);
  block_signals(&fds);
  pid_t init = start_init(spec, &fds);
  /* init builds the namespaces and joins the cgroups meanwhile: the server's go waits for the
   * job's start record to be durable, and the two overlap. */
  if (await_go != NULL) await_go(spec, fds.sigfd);
  /* A failed write means init is gone: its report (or its end) comes through the relay. */
  ssize_t unused = write(fds.begin[1], "b", 1);
  (void)unused;
  close(fds.begin[1]);
  relay_until_done(spec, &fds, init, &outcome);
  return report_end(&outcome);
}

/* ---- entry ------------------------------------------------------------ */

/* jobexec --serve SOCKET --parent-pid N */
static int serve_main(int argc, char **argv) {
  int usage = argc != 5 || strcmp(argv[3], "--parent-pid") != 0;
  long parent = usage ? -1 : parse_number(argv[4], INT_MAX);
  if (parent <= 0) {
    fprintf(stderr, "usage: jobexec --serve SOCKET --parent-pid N\n");
    return 2;
  }
  return serve(argv[2], (pid_t)parent);
}

/* Points argv at heap copies of its strings, so that init can blank the originals. */
static void copy_args(int argc, char **argv) {
  if (argc < 1) _exit(EXIT_HELPER_FAILED); /* execve(2) with no argv at all */
  cmdline_start = argv[0];
  cmdline_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
  for (int i = 0; i < argc; i++)
    if ((argv[i] = strdup(argv[i])) == NULL) _exit(EXIT_HELPER_FAILED);
}

int main(int argc, char **argv) {
  copy_args(argc, argv);
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    printf("jobexec %s\n", JOBEXEC_SOURCE_SHA256);
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "--serve") == 0) return serve_main(argc, argv);
  if (argc > 1 && strcmp(argv[1], "--lock") == 0) return lock_main(argc, argv);
  if (argc > 1 && strcmp(argv[1], "--clear-keys") == 0) return clear_keys_main(argc, argv);
  struct spec spec;
  parse_args(argc, argv, &spec);
  read_env(&spec);
  return run_helper(&spec, NULL);
}
