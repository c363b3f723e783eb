/*
 * jobexec: starts one job in fresh namespaces and cgroups, then stays as its
 * monitor. Forked by the fork server mode (see "fork server" below), which
 * the isolation layer (src/isolation/fork-server.ts) starts once from the
 * server's main thread; never run through a shell.
 *
 *   jobexec --version
 *   jobexec --serve SOCKET --parent-pid N
 *   jobexec --lock                  (flock of fd 3, see lock.c)
 *   jobexec [--cgroup1-dir DIR]... [--cgroup2-dir DIR] [--hostname NAME]
 *           [--uid N] [--gid N] [--cwd DIR] [--host-network]
 *           [--parent-pid N] -- COMMAND [ARG]...
 *
 * The last form (the direct mode) runs one helper; the fork server forks
 * one per launch, which takes the same options in its request.
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
 * it forks the job. A single thread moving itself is the one migration for
 * which the kernel skips the global cgroup_threadgroup_rwsem write lock (and
 * its RCU grace period): writing init's pid to cgroup.procs from the helper
 * took 15-40 ms on a loaded 2-core host, the self-move about 0. Any failed
 * join ends init before the job exists (fail closed).
 *
 * Process shape (the PID namespace's init is the job's reaper, see tini):
 *   fork server (jobexec --serve, one per server process; forks and reaps helpers)
 *   `- helper (host PID namespace; relays output, forwards signals, reports)
 *     `- init  (clone3: PID 1 of new PID, mount, net, UTS and IPC namespaces)
 *          `- job (PID 2, its own session and process group, uid/gid 65534)
 *
 * Status channel, fd 3, one line per event, written only by the helper:
 *   started PID                    COMMAND was exec'd (PID: init's host pid)
 *   error STAGE SYSCALL ERRNO      the helper failed; the job did not run or
 *                                  was killed; STAGE is one of args, setup,
 *                                  clone, cgroup, init, mount, net, uts,
 *                                  creds, cwd, exec, relay
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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <linux/close_range.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lock.h"

#ifndef JOBEXEC_SOURCE_SHA256
#define JOBEXEC_SOURCE_SHA256 "unknown"
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

enum {
  EXIT_HELPER_FAILED = 125,
  STATUS_FD = 3,
  ENV_FD = 4,
  MAX_ENV_BYTES = 1 << 20, /* the job layer allows far less; a bound for a confused caller */
  MAX_CGROUPS = 16,
  LINE_MAX_LEN = 256,
  /* After init has been reaped, relaying stops once the pipes stay idle this long: only a
   * descriptor smuggled out of the (dead) namespace could still hold them open. */
  DRAIN_IDLE_MS = 2000,
};

/* What to start, from argv. */
struct spec {
  const char *cgroup1_dirs[MAX_CGROUPS]; /* v1 cgroups init joins itself */
  int n_cgroups;
  const char *cgroup2_dir; /* v2 dir for CLONE_INTO_CGROUP */
  const char *hostname;
  const char *cwd;
  uid_t uid;
  gid_t gid;
  int host_network;
  pid_t parent_pid;
  char **argv;
  char **envp; /* the job's environment, from ENV_FD */
};

/* Descriptors shared between the stages. r/w: read and write ends. */
struct fds {
  int out[2], err[2]; /* the job's stdout and stderr pipes */
  int report[2];      /* init -> helper: one line per event */
  int release[2];     /* helper -> init: one byte once the cgroups are joined */
  int sigfd;          /* helper's signalfd */
};

/* Where the child stages send a failure: the report pipe (init) or the exec pipe (job). */
static int child_report_fd = -1;

/* ---- reporting ------------------------------------------------------- */

/*
 * Writes one line to fd in a single write (atomic below PIPE_BUF). Nothing to
 * do if the reader has gone: the death signal ends us anyway.
 */
static void write_line(int fd, const char *fmt, va_list ap) {
  char line[LINE_MAX_LEN];
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = sizeof line - 2;
  line[n++] = '\n';
  ssize_t unused = write(fd, line, (size_t)n);
  (void)unused;
}

/* One status line to the server (fd 3). */
static void status_line(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  write_line(STATUS_FD, fmt, ap);
  va_end(ap);
}

/* Helper-side failure: report stage, syscall and errno, then exit 125. */
static _Noreturn void fail(const char *stage, const char *syscall_name) {
  status_line("error %s %s %d", stage, syscall_name, errno);
  exit(EXIT_HELPER_FAILED);
}

/* Child-side failure (init or job): same record, sent up the report pipe. */
static _Noreturn void child_fail(const char *stage, const char *syscall_name) {
  char line[LINE_MAX_LEN];
  int n = snprintf(line, sizeof line, "error %s %s %d\n", stage, syscall_name, errno);
  if (n > 0 && child_report_fd >= 0) {
    ssize_t unused = write(child_report_fd, line, (size_t)n);
    (void)unused;
  }
  _exit(EXIT_HELPER_FAILED);
}

/* ---- arguments ------------------------------------------------------- */

static long parse_number(const char *option, const char *text, long max) {
  char *end = NULL;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < 0 || value > max) {
    errno = EINVAL;
    fail("args", option);
  }
  return value;
}

static void parse_args(int argc, char **argv, struct spec *spec) {
  static const struct option options[] = {
      {"cgroup1-dir", required_argument, NULL, 'c'}, {"cgroup2-dir", required_argument, NULL, '2'},
      {"hostname", required_argument, NULL, 'h'},     {"uid", required_argument, NULL, 'u'},
      {"gid", required_argument, NULL, 'g'},          {"cwd", required_argument, NULL, 'd'},
      {"host-network", no_argument, NULL, 'n'},       {"parent-pid", required_argument, NULL, 'p'},
      {"version", no_argument, NULL, 'v'},            {NULL, 0, NULL, 0},
  };
  memset(spec, 0, sizeof *spec);
  spec->uid = 65534;
  spec->gid = 65534;
  spec->cwd = "/";
  opterr = 0;
  int opt;
  while ((opt = getopt_long(argc, argv, "+", options, NULL)) != -1) {
    switch (opt) {
    case 'c':
      if (spec->n_cgroups == MAX_CGROUPS) {
        errno = E2BIG;
        fail("args", "cgroup1-dir");
      }
      spec->cgroup1_dirs[spec->n_cgroups++] = optarg;
      break;
    case '2': spec->cgroup2_dir = optarg; break;
    case 'h': spec->hostname = optarg; break;
    case 'u': spec->uid = (uid_t)parse_number("uid", optarg, INT_MAX); break;
    case 'g': spec->gid = (gid_t)parse_number("gid", optarg, INT_MAX); break;
    case 'd': spec->cwd = optarg; break;
    case 'n': spec->host_network = 1; break;
    case 'p': spec->parent_pid = (pid_t)parse_number("parent-pid", optarg, INT_MAX); break;
    case 'v':
      printf("jobexec %s\n", JOBEXEC_SOURCE_SHA256);
      exit(0);
    default: errno = EINVAL; fail("args", "getopt");
    }
  }
  if (optind >= argc) {
    errno = EINVAL;
    fail("args", "argv");
  }
  spec->argv = &argv[optind];
}

/* Reads the job's environment from ENV_FD (NUL-terminated entries) to EOF. */
static void read_env(struct spec *spec) {
  size_t cap = 4096, len = 0, count = 0;
  char *buf = malloc(cap);
  if (buf == NULL) fail("args", "malloc");
  for (;;) {
    if (len == cap) {
      if (cap >= MAX_ENV_BYTES) {
        errno = E2BIG;
        fail("args", "read");
      }
      char *grown = realloc(buf, cap *= 2);
      if (grown == NULL) fail("args", "realloc");
      buf = grown;
    }
    ssize_t n = read(ENV_FD, buf + len, cap - len);
    if (n == -1 && errno == EINTR) continue;
    if (n == -1) fail("args", "read");
    if (n == 0) break;
    len += (size_t)n;
  }
  close(ENV_FD);
  if (len > 0 && buf[len - 1] != '\0') {
    errno = EINVAL;
    fail("args", "env");
  }
  for (size_t i = 0; i < len; i++) count += buf[i] == '\0';
  char **envp = calloc(count + 1, sizeof *envp);
  if (envp == NULL) fail("args", "calloc");
  for (size_t i = 0, k = 0; i < len; i += strlen(buf + i) + 1) envp[k++] = buf + i;
  spec->envp = envp;
}

/* ---- helper: before the clone ---------------------------------------- */

/* Dies with the server: SIGKILL on parent death, then close the race of a parent already gone. */
static void guard_parent(const struct spec *spec) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("setup", "prctl");
  if (spec->parent_pid != 0 && getppid() != spec->parent_pid) {
    errno = ESRCH;
    fail("setup", "getppid");
  }
  if (fcntl(STATUS_FD, F_GETFD) == -1) exit(EXIT_HELPER_FAILED); /* no channel to report on */
}

static void make_pipes(struct fds *fds) {
  if (pipe2(fds->out, O_CLOEXEC) != 0 || pipe2(fds->err, O_CLOEXEC) != 0 ||
      pipe2(fds->report, O_CLOEXEC) != 0 || pipe2(fds->release, O_CLOEXEC) != 0)
    fail("setup", "pipe2");
  /* Our fds 1 and 2 are the server's pipes: never block the relay on them. */
  for (int fd = 1; fd <= 2; fd++) {
    int flags = fcntl(fd, F_GETFL);
    if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) fail("setup", "fcntl");
  }
}

/* Signals are blocked from here on and read from a signalfd; the child inherits the mask. */
static void block_signals(struct fds *fds) {
  sigset_t set;
  sigfillset(&set);
  if (sigprocmask(SIG_SETMASK, &set, NULL) != 0) fail("setup", "sigprocmask");
  sigemptyset(&set);
  const int watched[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof watched / sizeof watched[0]; i++) sigaddset(&set, watched[i]);
  fds->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fds->sigfd == -1) fail("setup", "signalfd");
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
    if (cgroup_fd == -1) fail("cgroup", "open");
  }
  pid_t pid = clone_into(flags, cgroup_fd);
  int joined_v2 = cgroup_fd >= 0;
  if (pid == -1 && cgroup_fd >= 0) {
    /* Older kernels or a refusing cgroup: fall back to a cgroup.procs write, as crun does. */
    pid = clone_into(flags, -1);
    joined_v2 = 0;
  }
  /* TODO(old kernels): no fork+unshare fallback when clone3 itself is missing (Linux < 5.3). */
  if (pid == -1) fail("clone", "clone3");
  if (pid == 0) run_init(spec, fds);
  if (cgroup_fd >= 0) close(cgroup_fd);
  if (!joined_v2 && spec->cgroup2_dir != NULL &&
      join_cgroup(spec->cgroup2_dir, "cgroup.procs", pid) != 0) {
    discard_child(pid);
    fail("cgroup", "write");
  }
  close(fds->out[1]);
  close(fds->err[1]);
  close(fds->report[1]);
  close(fds->release[0]);
  if (write(fds->release[1], "go", 1) != 1) {
    discard_child(pid);
    fail("clone", "write");
  }
  close(fds->release[1]);
  return pid;
}

/* ---- init: PID 1 of the job's namespaces ----------------------------- */

static void bring_up_loopback(void) {
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock == -1) child_fail("net", "socket");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) child_fail("net", "ioctl");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) child_fail("net", "ioctl");
  close(sock);
}

/* Private propagation first: without it a mount made inside leaks to a shared host mount. */
static void make_mounts(void) {
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) child_fail("mount", "mount");
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
    child_fail("mount", "mount");
  /* The host's cgroup tree lists every job of every user and their host pids: hide it
   * (after the v1 joins, which write below it). */
  if (mount("tmpfs", "/sys/fs/cgroup", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "mode=0555,size=4k") != 0 &&
      errno != ENOENT)
    child_fail("mount", "mount");
  /* Scratch space of its own: every job runs as uid 65534, so world-writable host
   * directories would let one user's job plant files or Unix sockets for another's.
   * POSIX shared memory too (the IPC namespace does not cover /dev/shm). tmpfs pages are
   * charged to the job's memory cgroup. */
  static const char *const scratch[] = {"/tmp", "/var/tmp", "/dev/shm"};
  for (size_t i = 0; i < sizeof scratch / sizeof scratch[0]; i++)
    if (mount("tmpfs", scratch[i], "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0 &&
        errno != ENOENT)
      child_fail("mount", "mount");
}

static void set_death_signal(const char *stage, pid_t expected_parent) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(stage, "prctl");
  if (getppid() != expected_parent) {
    errno = ESRCH;
    child_fail(stage, "getppid");
  }
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

/* The job: drop privileges, re-arm the death signal, clean fds and signals, exec. */
static _Noreturn void run_job(const struct spec *spec, const struct fds *fds, int exec_fd) {
  child_report_fd = exec_fd;
  if (setsid() == -1) child_fail("creds", "setsid");
  if (dup2(fds->out[1], 1) == -1 || dup2(fds->err[1], 2) == -1) child_fail("init", "dup2");
  /* Pipes belong to their creator (mode 0600): without this, reopening
   * /dev/stdout (/proc/self/fd/1) as the job's user fails with EACCES. */
  if (fchown(1, spec->uid, spec->gid) != 0 || fchown(2, spec->uid, spec->gid) != 0)
    child_fail("creds", "fchown");
  if (setgroups(0, NULL) != 0) child_fail("creds", "setgroups");
  if (setresgid(spec->gid, spec->gid, spec->gid) != 0) child_fail("creds", "setresgid");
  if (setresuid(spec->uid, spec->uid, spec->uid) != 0) child_fail("creds", "setresuid");
  /* No regaining privileges through setuid or file-capability binaries of the host. */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail("creds", "prctl");
  set_death_signal("creds", 1); /* a uid change clears it */
  if (chdir(spec->cwd) != 0) child_fail("cwd", "chdir");
  /* Only 0-2 survive exec; the exec pipe stays usable until then. */
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) child_fail("init", "close_range");
  for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL); /* SIGKILL/SIGSTOP: EINVAL, fine */
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) child_fail("init", "sigprocmask");
  exec_command(spec->argv, spec->envp);
  child_fail("exec", "execve");
}

/* Sends one line up the report pipe (init -> helper). */
static void report(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  write_line(child_report_fd, fmt, ap);
  va_end(ap);
}

/*
 * Forks the job and learns whether its exec succeeded from a CLOEXEC pipe:
 * EOF without a record means execve() closed it.
 */
static pid_t fork_job(const struct spec *spec, struct fds *fds) {
  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) child_fail("init", "pipe2");
  pid_t job = fork();
  if (job == -1) child_fail("init", "fork");
  if (job == 0) {
    close(exec_pipe[0]);
    run_job(spec, fds, exec_pipe[1]);
  }
  close(exec_pipe[1]);
  close(fds->out[1]);
  close(fds->err[1]);
  char record[LINE_MAX_LEN];
  ssize_t n;
  while ((n = read(exec_pipe[0], record, sizeof record - 1)) == -1 && errno == EINTR) {
  }
  close(exec_pipe[0]);
  if (n < 0) child_fail("init", "read");
  if (n > 0) {
    /* Pass the job's failure up unchanged, then go: the namespace dies with us. */
    ssize_t unused = write(child_report_fd, record, (size_t)n);
    (void)unused;
    _exit(EXIT_HELPER_FAILED);
  }
  report("started");
  return job;
}

/*
 * Reaps every child (orphans re-parent to us) and forwards termination
 * signals to the job's process group; ends when the job does, which ends the
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
      kill(-job, sig);
      continue;
    }
    int wstatus;
    pid_t pid;
    while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
      if (pid != job) continue;
      if (WIFEXITED(wstatus)) report("exit %d", WEXITSTATUS(wstatus));
      else report("signal %d", WTERMSIG(wstatus));
      _exit(0);
    }
  }
}

static _Noreturn void run_init(const struct spec *spec, struct fds *fds) {
  child_report_fd = fds->report[1];
  close(fds->out[0]);
  close(fds->err[0]);
  close(fds->report[0]);
  close(fds->release[1]);
  close(fds->sigfd);
  close(STATUS_FD); /* the helper alone writes the status channel */
  /* Armed before waiting: if the helper dies first, the release pipe reads EOF. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail("init", "prctl");
  char go;
  if (read(fds->release[0], &go, 1) != 1) _exit(EXIT_HELPER_FAILED);
  close(fds->release[0]);
  for (int i = 0; i < spec->n_cgroups; i++)
    if (join_cgroup(spec->cgroup1_dirs[i], "tasks", 0) != 0) child_fail("cgroup", "write");
  make_mounts();
  if (!spec->host_network) bring_up_loopback();
  if (spec->hostname != NULL && sethostname(spec->hostname, strlen(spec->hostname)) != 0)
    child_fail("uts", "sethostname");
  pid_t job = fork_job(spec, fds);
  reap_and_forward(job);
}

/* ---- helper: relay and report ---------------------------------------- */

/* One job pipe relayed to one of our fds. */
struct relay {
  int from, to;
  int blocked;  /* `to` is full: wait for POLLOUT instead of POLLIN */
  int dropping; /* the server closed `to`: discard, so that the job never blocks on us */
};

/* Moves what is available without blocking; returns 0 at EOF. */
static int pump(struct relay *r) {
  for (;;) {
    ssize_t n;
    if (r->dropping) {
      char sink[4096];
      n = read(r->from, sink, sizeof sink);
    } else {
      n = splice(r->from, NULL, r->to, NULL, 1 << 16, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    }
    if (n > 0) continue;
    if (n == 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EPIPE && !r->dropping) {
      r->dropping = 1;
      continue;
    }
    if (errno != EAGAIN) fail("relay", r->dropping ? "read" : "splice");
    /* EAGAIN: the job pipe is empty, or our output is full if the pipe still holds data. */
    int queued = 0;
    r->blocked = !r->dropping && ioctl(r->from, FIONREAD, &queued) == 0 && queued > 0;
    return 1;
  }
}

/* What the helper has learnt about init, for the final line. */
struct outcome {
  char final[LINE_MAX_LEN]; /* exit/signal/error line received from init */
  int init_done;
  int init_status;
  char pending[LINE_MAX_LEN]; /* partial report line */
  size_t pending_len;
};

static void read_reports(int fd, pid_t init, struct outcome *o, int *open_fd) {
  char buf[LINE_MAX_LEN];
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
    if (strcmp(o->pending, "started") == 0) status_line("started %d", (int)init);
    else snprintf(o->final, sizeof o->final, "%s", o->pending);
  }
}

static void handle_signals(int sigfd, pid_t init, struct outcome *o) {
  struct signalfd_siginfo info;
  while (read(sigfd, &info, sizeof info) == (ssize_t)sizeof info) {
    if (info.ssi_signo != SIGCHLD) {
      kill(init, (int)info.ssi_signo); /* init forwards it to the job's group */
      continue;
    }
    int wstatus;
    if (!o->init_done && waitpid(init, &wstatus, WNOHANG) == init) {
      o->init_done = 1;
      o->init_status = wstatus;
    }
  }
}

/*
 * poll() loop: relays both output pipes, forwards signals and collects init's
 * reports. Done when init has been reaped and both pipes and the report pipe
 * are at EOF.
 */
static void relay_until_done(struct fds *fds, pid_t init, struct outcome *o) {
  struct relay relays[2] = {{fds->out[0], 1, 0, 0}, {fds->err[0], 2, 0, 0}};
  int open_relays[2] = {1, 1};
  int report_open = 1;
  const int ours[] = {fds->report[0], fds->out[0], fds->err[0]};
  for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
    if (fcntl(ours[i], F_SETFL, O_NONBLOCK) == -1) fail("relay", "fcntl");
  while (!o->init_done || open_relays[0] || open_relays[1] || report_open) {
    struct pollfd pfd[4];
    pfd[0] = (struct pollfd){fds->sigfd, POLLIN, 0};
    pfd[1] = (struct pollfd){report_open ? fds->report[0] : -1, POLLIN, 0};
    for (int i = 0; i < 2; i++) {
      struct relay *r = &relays[i];
      pfd[2 + i] = (struct pollfd){-1, 0, 0};
      if (open_relays[i]) pfd[2 + i] = r->blocked ? (struct pollfd){r->to, POLLOUT, 0}
                                                  : (struct pollfd){r->from, POLLIN, 0};
    }
    /* Only an idle job side counts: waiting for the server to read is not idleness. */
    int idle_bound = o->init_done && !relays[0].blocked && !relays[1].blocked;
    int ready = poll(pfd, 4, idle_bound ? DRAIN_IDLE_MS : -1);
    if (ready == -1) {
      if (errno == EINTR) continue;
      fail("relay", "poll");
    }
    if (ready == 0) break; /* init gone and the pipes idle: see DRAIN_IDLE_MS */
    if (pfd[0].revents) handle_signals(fds->sigfd, init, o);
    if (pfd[1].revents) read_reports(fds->report[0], init, o, &report_open);
    for (int i = 0; i < 2; i++) {
      if (!pfd[2 + i].revents) continue;
      relays[i].blocked = 0;
      if (pump(&relays[i]) == 0) open_relays[i] = 0;
    }
  }
}

/* The last status line: init's own report, or how init died if it could not report. */
static int report_end(const struct outcome *o) {
  if (o->final[0] != '\0') {
    status_line("%s", o->final);
    return strncmp(o->final, "error", 5) == 0 ? EXIT_HELPER_FAILED : 0;
  }
  /* Killed before reporting (cgroup kill, SIGKILL): the job died with it. */
  if (WIFSIGNALED(o->init_status)) {
    status_line("signal %d", WTERMSIG(o->init_status));
    return 0;
  }
  status_line("error init waitpid %d", WEXITSTATUS(o->init_status));
  return EXIT_HELPER_FAILED;
}

/* Runs the helper for one parsed spec; its fds 1-3 are in place. Returns the exit code. */
static int run_helper(struct spec *spec) {
  struct fds fds;
  struct outcome outcome;
  memset(&outcome, 0, sizeof outcome);
  guard_parent(spec);
  make_pipes(&fds);
  block_signals(&fds);
  pid_t init = start_init(spec, &fds);
  relay_until_done(&fds, init, &outcome);
  return report_end(&outcome);
}

/* ---- fork server ------------------------------------------------------ */

/*
 * jobexec --serve SOCKET --parent-pid N
 *
 * Forks one helper per launch request, so that the server never forks
 * itself: a fork copies the page tables of the whole forking process, which
 * for a Node.js server holding many jobs took 5-33 ms of its event loop per
 * start. Started once by the server (src/isolation/fork-server.ts), with an
 * empty environment like the helper.
 *
 * Requests on fd 0, each a 32-bit little-endian length and then that many
 * bytes of NUL-terminated strings:
 *   launch TOKEN NARGS ARG... ENV...   fork a helper with options ARG... (the
 *                                      direct mode's, through `--` and the
 *                                      command) and the job's environment
 *   kill TOKEN SIGNAL                  signal that helper if not yet reaped
 * Replies on fd 1, one line each (one write, atomic on the pipe):
 *   forked TOKEN PID                   the helper runs
 *   failed TOKEN STAGE ERRNO           it could not be forked or connect back
 *   ended TOKEN exit CODE | ended TOKEN signal N   it was reaped
 * TOKEN (32 hex digits, chosen by the server) names the launch everywhere.
 *
 * A forked helper connects to SOCKET three times, sending TOKEN and one of
 * o, e, s (stdout, stderr, status): those connections become its fds 1, 2
 * and 3. Once the server holds all three it writes 'g' on the status
 * connection, and the helper goes on exactly as in the direct mode. Only the fork server
 * ever signals a helper, and only before reaping it: the pid cannot have
 * been reused. EOF on fd 0 ends the fork server; the death signal ends the
 * helpers still running (the server closes it only once every job ended).
 */

enum {
  TOKEN_LEN = 32,
  MAX_REQUEST = 4 << 20, /* argv and env are each capped at 128 KiB by the job layer */
};

struct served {
  pid_t pid;
  char token[TOKEN_LEN + 1];
};

struct server {
  const char *socket_path;
  pid_t self;
  struct served *helpers;
  size_t n_helpers, cap_helpers;
};

static void reply(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  write_line(1, fmt, ap);
  va_end(ap);
}

static _Noreturn void serve_fail(const char *what) {
  fprintf(stderr, "jobexec fork server: %s: %s\n", what, strerror(errno));
  exit(EXIT_HELPER_FAILED);
}

static int valid_token(const char *token) {
  if (strlen(token) != TOKEN_LEN) return 0;
  for (const char *p = token; *p != '\0'; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
  return 1;
}

/* Connects one stream back to the server, announcing token and kind; returns the fd (>= 10). */
static int connect_back(const char *socket_path, const char *token, char kind) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(socket_path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(addr.sun_path, socket_path);
  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock == -1) return -1;
  char hello[TOKEN_LEN + 1];
  memcpy(hello, token, TOKEN_LEN);
  hello[TOKEN_LEN] = kind;
  int rc;
  while ((rc = connect(sock, (struct sockaddr *)&addr, sizeof addr)) == -1 && errno == EINTR) {
  }
  if (rc == 0 && write(sock, hello, sizeof hello) != (ssize_t)sizeof hello) rc = -1;
  /* Above 3, so that the dup2()s onto 1-3 below cannot clobber one another. */
  int moved = rc == 0 ? fcntl(sock, F_DUPFD_CLOEXEC, 10) : -1;
  int saved = errno;
  close(sock);
  errno = saved;
  return moved;
}

/*
 * Runs nothing until the server holds all three connections, which it says
 * with one byte, 'g', on the status connection: a connection the kernel
 * accepted but the server never got (it closes those when out of fds) hangs
 * up instead, and the helper ends before anything ran.
 */
static void await_go(void) {
  struct pollfd pfd[3] = {{1, POLLRDHUP, 0}, {2, POLLRDHUP, 0}, {STATUS_FD, POLLIN | POLLRDHUP, 0}};
  for (;;) {
    if (poll(pfd, 3, -1) == -1) {
      if (errno == EINTR) continue;
      _exit(EXIT_HELPER_FAILED);
    }
    if (pfd[0].revents != 0 || pfd[1].revents != 0) _exit(EXIT_HELPER_FAILED);
    if (pfd[2].revents == 0) continue;
    char go = 0;
    if (read(STATUS_FD, &go, 1) == 1 && go == 'g') return;
    _exit(EXIT_HELPER_FAILED);
  }
}

/* The forked helper: streams back to the server on fds 1-3, then the direct mode's work. */
static _Noreturn void run_served(const struct server *srv, const char *token, char **args,
                                 int nargs, char **envp) {
  int socks[3];
  static const char kinds[] = {'o', 'e', 's'};
  for (int i = 0; i < 3; i++) {
    socks[i] = connect_back(srv->socket_path, token, kinds[i]);
    if (socks[i] == -1) {
      reply("failed %s connect %d", token, errno); /* fd 1 is still the reply pipe */
      _exit(EXIT_HELPER_FAILED);
    }
  }
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd == -1 || dup2(null_fd, 0) == -1 || dup2(socks[0], 1) == -1 ||
      dup2(socks[1], 2) == -1 || dup2(socks[2], STATUS_FD) == -1) {
    reply("failed %s dup2 %d", token, errno);
    _exit(EXIT_HELPER_FAILED);
  }
  /* The request pipe, the signalfd, the listening side of nothing: only 0-3 stay. */
  if (close_range(STATUS_FD + 1, ~0U, 0) != 0) fail("setup", "close_range");
  await_go();
  /* argv for getopt: a program name, the options, NULL (the request buffer ends each string). */
  char **argv = calloc((size_t)nargs + 2, sizeof *argv);
  if (argv == NULL) fail("args", "calloc");
  argv[0] = "jobexec";
  memcpy(argv + 1, args, (size_t)nargs * sizeof *argv);
  struct spec spec;
  optind = 0; /* glibc: full re-initialisation of getopt */
  parse_args(nargs + 1, argv, &spec);
  spec.envp = envp;
  spec.parent_pid = srv->self;
  exit(run_helper(&spec));
}

/* Splits a request body into its NUL-terminated strings; NULL-terminated array, or NULL. */
static char **split_strings(char *body, size_t len, size_t *count) {
  if (len == 0 || body[len - 1] != '\0') return NULL;
  size_t n = 0;
  for (size_t i = 0; i < len; i++) n += body[i] == '\0';
  char **out = calloc(n + 1, sizeof *out);
  if (out == NULL) return NULL;
  for (size_t i = 0, k = 0; i < len; i += strlen(body + i) + 1) out[k++] = body + i;
  *count = n;
  return out;
}

static struct served *find_helper(struct server *srv, const char *token) {
  for (size_t i = 0; i < srv->n_helpers; i++)
    if (strcmp(srv->helpers[i].token, token) == 0) return &srv->helpers[i];
  return NULL;
}

static void handle_launch(struct server *srv, char **strs, size_t count) {
  const char *token = strs[1];
  char *end = NULL;
  long nargs = count >= 3 ? strtol(strs[2], &end, 10) : -1;
  if (end == NULL || *end != '\0' || nargs < 1 || (size_t)nargs > count - 3) {
    reply("failed %s request %d", token, EINVAL);
    return;
  }
  if (find_helper(srv, token) != NULL) {
    reply("failed %s request %d", token, EEXIST);
    return;
  }
  if (srv->n_helpers == srv->cap_helpers) {
    size_t cap = srv->cap_helpers == 0 ? 64 : srv->cap_helpers * 2;
    struct served *grown = realloc(srv->helpers, cap * sizeof *grown);
    if (grown == NULL) {
      reply("failed %s fork %d", token, ENOMEM);
      return;
    }
    srv->helpers = grown;
    srv->cap_helpers = cap;
  }
  pid_t pid = fork();
  if (pid == -1) {
    reply("failed %s fork %d", token, errno);
    return;
  }
  /* strs is NULL-terminated after the environment entries. */
  if (pid == 0) run_served(srv, token, &strs[3], (int)nargs, &strs[3 + nargs]);
  struct served *h = &srv->helpers[srv->n_helpers++];
  h->pid = pid;
  snprintf(h->token, sizeof h->token, "%s", token);
  reply("forked %s %d", token, (int)pid);
}

static void handle_request(struct server *srv, char *body, size_t len) {
  size_t count = 0;
  char **strs = split_strings(body, len, &count);
  if (strs == NULL || count < 2 || !valid_token(strs[1])) {
    errno = EINVAL;
    serve_fail("malformed request");
  }
  if (strcmp(strs[0], "launch") == 0) {
    handle_launch(srv, strs, count);
  } else if (strcmp(strs[0], "kill") == 0 && count == 3) {
    struct served *h = find_helper(srv, strs[1]);
    long sig = strtol(strs[2], NULL, 10);
    if (h != NULL && sig > 0 && sig < NSIG) kill(h->pid, (int)sig);
  } else {
    errno = EINVAL;
    serve_fail("unknown request");
  }
  free(strs);
}

/* Reaps every ended helper and reports it under its token. */
static void reap_helpers(struct server *srv) {
  int wstatus;
  pid_t pid;
  while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
    for (size_t i = 0; i < srv->n_helpers; i++) {
      if (srv->helpers[i].pid != pid) continue;
      if (WIFEXITED(wstatus)) reply("ended %s exit %d", srv->helpers[i].token, WEXITSTATUS(wstatus));
      else reply("ended %s signal %d", srv->helpers[i].token, WTERMSIG(wstatus));
      srv->helpers[i] = srv->helpers[--srv->n_helpers];
      break;
    }
  }
}

static int serve(int argc, char **argv) {
  if (argc != 5 || strcmp(argv[3], "--parent-pid") != 0) {
    fprintf(stderr, "usage: jobexec --serve SOCKET --parent-pid N\n");
    return 2;
  }
  struct server srv = {argv[2], getpid(), NULL, 0, 0};
  /* Nothing the server's process inherited beyond our stdio may reach the helpers. */
  if (close_range(3, ~0U, 0) != 0) serve_fail("close_range");
  /* Dies with the server, and so do its helpers (their own death signal). */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) serve_fail("prctl");
  if (getppid() != (pid_t)strtol(argv[4], NULL, 10)) {
    errno = ESRCH;
    serve_fail("getppid");
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) serve_fail("sigprocmask");
  int sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd == -1) serve_fail("signalfd");
  size_t cap = 64 * 1024, len = 0;
  char *buf = malloc(cap);
  if (buf == NULL) serve_fail("malloc");
  for (;;) {
    struct pollfd pfd[2] = {{0, POLLIN, 0}, {sigfd, POLLIN, 0}};
    if (poll(pfd, 2, -1) == -1) {
      if (errno == EINTR) continue;
      serve_fail("poll");
    }
    if (pfd[1].revents) {
      struct signalfd_siginfo info;
      while (read(sigfd, &info, sizeof info) == (ssize_t)sizeof info) {
      }
      reap_helpers(&srv);
    }
    if (!pfd[0].revents) continue;
    if (len == cap) {
      char *grown = realloc(buf, cap *= 2);
      if (grown == NULL) serve_fail("realloc");
      buf = grown;
    }
    ssize_t n = read(0, buf + len, cap - len);
    if (n == -1 && errno == EINTR) continue;
    if (n == -1) serve_fail("read");
    if (n == 0) return 0; /* the server is done with us */
    len += (size_t)n;
    size_t off = 0;
    while (len - off >= 4) {
      uint32_t size = (uint32_t)(unsigned char)buf[off] | (uint32_t)(unsigned char)buf[off + 1] << 8 |
                      (uint32_t)(unsigned char)buf[off + 2] << 16 |
                      (uint32_t)(unsigned char)buf[off + 3] << 24;
      if (size > MAX_REQUEST) {
        errno = E2BIG;
        serve_fail("request");
      }
      if (len - off - 4 < size) break;
      handle_request(&srv, buf + off + 4, size);
      off += 4 + size;
    }
    memmove(buf, buf + off, len - off);
    len -= off;
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--serve") == 0) return serve(argc, argv);
  if (argc > 1 && strcmp(argv[1], "--lock") == 0) return lock_main(argc, argv);
  struct spec spec;
  parse_args(argc, argv, &spec);
  read_env(&spec);
  return run_helper(&spec);
}
