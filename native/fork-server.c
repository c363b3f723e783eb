/*
 * jobexec --serve SOCKET --parent-pid N
 *
 * Forks one helper per launch request, so that the server never forks
 * itself: a fork copies the page tables of the whole forking process, which
 * for a Node.js server holding many jobs blocks its event loop for a time
 * that grows with its memory (docs/benchmarks.md). Started once by the server (src/isolation/fork-server.ts), with an
 * empty environment like the helper.
 *
 * Requests on fd 0 and replies on fd 1 are described in protocol.h. A launch
 * request's fields fill a struct spec here, in the fork server, exactly as
 * the direct mode's options do; a request it refuses forks nothing. TOKEN
 * (LIMIT_TOKEN_HEX hex digits, chosen by the server) names the launch
 * everywhere.
 *
 * A forked helper connects to SOCKET three times, sending TOKEN and one
 * HANDSHAKE byte (stdout, stderr, status): those connections become its fds
 * 1, 2 and 3; a launch with stdin connects a fourth time (stdin), which
 * becomes its fd 0 (else /dev/null). Once the server holds all of them it
 * writes HANDSHAKE_HELD on the status connection, and the helper goes on as
 * in the direct mode (init builds the namespaces and joins the cgroups), but
 * runs the job's command only after HANDSHAKE_GO, once the server made the
 * job's start record durable.
 * Only the fork server ever signals a helper, and only before reaping it:
 * the pid cannot have been reused. EOF on fd 0 ends the fork server; the
 * death signal ends the helpers still running (the server closes it only
 * once every job ended).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"
#include "oom.h"
#include "protocol.h"
#include "report.h"

struct served {
  pid_t pid;
  char token[LIMIT_TOKEN_HEX + 1];
};

struct server {
  const char *socket_path;
  pid_t self;
  struct served *helpers;
  size_t n_helpers, cap_helpers;
};

/* Requests read but not yet handled. */
struct inbox {
  char *buf;
  size_t len, cap;
};

/* The fork server cannot report on a status channel: its stderr is the server's. */
static _Noreturn void serve_fail(const char *what) {
  fprintf(stderr, "jobexec fork server: %s: %s\n", what, strerror(errno));
  exit(EXIT_HELPER_FAILED);
}

static int valid_token(const char *token) {
  if (strlen(token) != LIMIT_TOKEN_HEX) return 0;
  for (const char *p = token; *p != '\0'; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
  return 1;
}

/* ---- the forked helper ------------------------------------------------ */

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
  char hello[LIMIT_TOKEN_HEX + 1];
  memcpy(hello, token, LIMIT_TOKEN_HEX);
  hello[LIMIT_TOKEN_HEX] = kind;
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

/* Makes fds 1-3 the three connections back and 0 the stdin one or /dev/null; failures are
 * replies (fd 1). */
static void connect_streams(const char *socket_path, const char *token, int with_stdin) {
  static const char kinds[] = {HANDSHAKE_STDOUT, HANDSHAKE_STDERR, HANDSHAKE_STATUS,
                               HANDSHAKE_STDIN};
  int socks[4];
  int n = with_stdin ? 4 : 3;
  for (int i = 0; i < n; i++) {
    socks[i] = connect_back(socket_path, token, kinds[i]);
    if (socks[i] == -1) {
      report(REPLY_FAILED " %s " FAILED_CONNECT " %d", token, errno);
      _exit(EXIT_HELPER_FAILED);
    }
  }
  int in_fd = with_stdin ? socks[3] : open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in_fd == -1 || dup2(in_fd, 0) == -1 || dup2(socks[0], 1) == -1 ||
      dup2(socks[1], 2) == -1 || dup2(socks[2], FD_STATUS) == -1) {
    report(REPLY_FAILED " %s " FAILED_DUP2 " %d", token, errno);
    _exit(EXIT_HELPER_FAILED);
  }
}

/*
 * Waits for the byte `want` from the server on the status connection: a
 * connection the kernel accepted but the server never got (it closes those
 * when out of fds) hangs up instead, and the helper ends before the job ran.
 * With sigfd (>= 0, signals blocked), a terminating signal ends it too, as
 * it would have unblocked.
 */
static void await_byte(const struct spec *spec, char want, int sigfd) {
  /* The stdin connection (fd 0) too when there is one: a server that dropped it never sends GO.
   * Without one fd 0 is /dev/null, always ready: not watched (-1). */
  struct pollfd pfd[5] = {{1, POLLRDHUP, 0},
                          {2, POLLRDHUP, 0},
                          {FD_STATUS, POLLIN | POLLRDHUP, 0},
                          {spec->stdin_open ? 0 : -1, POLLRDHUP, 0},
                          {sigfd, POLLIN, 0}};
  for (;;) {
    if (poll(pfd, 5, -1) == -1) {
      if (errno == EINTR) continue;
      _exit(EXIT_HELPER_FAILED);
    }
    if (pfd[0].revents != 0 || pfd[1].revents != 0 || pfd[3].revents != 0)
      _exit(EXIT_HELPER_FAILED);
    if (pfd[4].revents != 0) {
      /* Left pending for the relay, which reaps init on SIGCHLD. */
      sigset_t pending;
      if (sigpending(&pending) != 0 || sigismember(&pending, SIGTERM) ||
          sigismember(&pending, SIGINT) || sigismember(&pending, SIGHUP) ||
          sigismember(&pending, SIGQUIT))
        _exit(EXIT_HELPER_FAILED);
      /* SIGCHLD (init failed: its report waits in the pipe) or SIGUSR*: stop watching.
       * TODO(signals): a terminating signal after that, before GO, reaches the job. */
      pfd[4].fd = -1;
    }
    if (pfd[2].revents == 0) continue;
    char byte = 0;
    if (read(FD_STATUS, &byte, 1) == 1 && byte == want) return;
    _exit(EXIT_HELPER_FAILED);
  }
}

/*
 * The job's command runs only once the server has made the job's start
 * record durable, which it says with HANDSHAKE_GO. Called by run_helper
 * while init builds the namespaces.
 */
static void await_go(const struct spec *spec, int sigfd) { await_byte(spec, HANDSHAKE_GO, sigfd); }

/* The forked helper: streams back to the server on fds 1-3, then the direct mode's work. */
static _Noreturn void run_served(const struct server *srv, const char *token,
                                 const struct spec *spec) {
  connect_streams(srv->socket_path, token, spec->stdin_open);
  report_to(FD_STATUS);
  /* The request pipe, the signalfd, the listening side of nothing: only 0-3 stay. */
  if (close_range(FD_STATUS + 1, ~0U, 0) != 0) fail(STAGE_SETUP, "close_range");
  /* Nothing more before the server holds every connection: from then on a failure's
   * report reaches it on the status connection it holds. */
  await_byte(spec, HANDSHAKE_HELD, -1);
  exit(run_helper(spec, await_go));
}

/* ---- requests ---------------------------------------------------------- */

static struct served *find_helper(struct server *srv, const char *token) {
  for (size_t i = 0; i < srv->n_helpers; i++)
    if (strcmp(srv->helpers[i].token, token) == 0) return &srv->helpers[i];
  return NULL;
}

/* Fills spec from the FIELD VALUE pairs after verb and token; -1 with errno. */
static int parse_launch(char **strs, size_t count, struct spec *spec) {
  if (count % 2 != 0) {
    errno = EINVAL;
    return -1;
  }
  size_t pairs = (count - 2) / 2, n_args = 0, n_env = 0;
  spec->argv = calloc(pairs + 1, sizeof *spec->argv);
  spec->envp = calloc(pairs + 1, sizeof *spec->envp);
  if (spec->argv == NULL || spec->envp == NULL) return -1;
  for (size_t i = 2; i < count; i += 2) {
    if (strcmp(strs[i], FIELD_ARG) == 0) spec->argv[n_args++] = strs[i + 1];
    else if (strcmp(strs[i], FIELD_ENV) == 0) spec->envp[n_env++] = strs[i + 1];
    else if (spec_set(spec, strs[i], strs[i + 1]) != 0) return -1;
  }
  if (n_args == 0) {
    errno = EINVAL;
    return -1;
  }
  return spec_check(spec);
}

/* Room for one more helper in the table; -1 with errno ENOMEM. */
static int reserve_helper(struct server *srv) {
  if (srv->n_helpers < srv->cap_helpers) return 0;
  size_t cap = srv->cap_helpers == 0 ? 64 : srv->cap_helpers * 2;
  struct served *grown = realloc(srv->helpers, cap * sizeof *grown);
  if (grown == NULL) return -1;
  srv->helpers = grown;
  srv->cap_helpers = cap;
  return 0;
}

static void fork_helper(struct server *srv, const char *token, const struct spec *spec) {
  pid_t pid = fork();
  if (pid == -1) {
    report(REPLY_FAILED " %s " FAILED_FORK " %d", token, errno);
    return;
  }
  if (pid == 0) run_served(srv, token, spec);
  struct served *h = &srv->helpers[srv->n_helpers++];
  h->pid = pid;
  snprintf(h->token, sizeof h->token, "%s", token);
  report(REPLY_FORKED " %s %d", token, (int)pid);
}

static void handle_launch(struct server *srv, char **strs, size_t count) {
  const char *token = strs[1];
  struct spec spec;
  spec_init(&spec);
  spec.parent_pid = srv->self;
  if (find_helper(srv, token) != NULL) {
    report(REPLY_FAILED " %s " FAILED_REQUEST " %d", token, EEXIST);
  } else if (parse_launch(strs, count, &spec) != 0) {
    report(REPLY_FAILED " %s " FAILED_REQUEST " %d", token, errno);
  } else if (reserve_helper(srv) != 0) {
    report(REPLY_FAILED " %s " FAILED_FORK " %d", token, ENOMEM);
  } else {
    fork_helper(srv, token, &spec);
  }
  free(spec.argv);
  free(spec.envp);
}

/* Queued with WHOM as its value: the helper passes it on to init, which picks the target. */
static void handle_kill(struct server *srv, char **strs) {
  struct served *h = find_helper(srv, strs[1]);
  long sig = strtol(strs[2], NULL, 10);
  long whom = strtol(strs[3], NULL, 10);
  if (h == NULL || sig <= 0 || sig >= NSIG || whom < WHOM_GROUP || whom > WHOM_ALL) return;
  if (sig == SIGKILL) kill(h->pid, SIGKILL);
  else sigqueue(h->pid, (int)sig, (union sigval){.sival_int = (int)whom});
}

static void handle_request(struct server *srv, char *body, size_t len) {
  size_t count = 0;
  char **strs = split_strings(body, len, &count);
  if (strs == NULL || count < 2 || !valid_token(strs[1])) {
    errno = EINVAL;
    serve_fail("malformed request");
  }
  if (strcmp(strs[0], REQUEST_LAUNCH) == 0) {
    handle_launch(srv, strs, count);
  } else if (strcmp(strs[0], REQUEST_KILL) == 0 && count == 4) {
    handle_kill(srv, strs);
  } else {
    errno = EINVAL;
    serve_fail("unknown request");
  }
  free(strs);
}

/* Reads what fd 0 has and handles every complete request; 0 at EOF. */
static int read_requests(struct server *srv, struct inbox *in) {
  if (in->len == in->cap) {
    char *grown = realloc(in->buf, in->cap *= 2);
    if (grown == NULL) serve_fail("realloc");
    in->buf = grown;
  }
  ssize_t n = read(0, in->buf + in->len, in->cap - in->len);
  if (n == -1 && errno == EINTR) return 1;
  if (n == -1) serve_fail("read");
  if (n == 0) return 0;
  in->len += (size_t)n;
  size_t off = 0;
  while (in->len - off >= LIMIT_LENGTH_BYTES) {
    const unsigned char *head = (const unsigned char *)in->buf + off;
    uint32_t size = (uint32_t)head[0] | (uint32_t)head[1] << 8 | (uint32_t)head[2] << 16 |
                    (uint32_t)head[3] << 24;
    if (size > LIMIT_MAX_REQUEST) {
      errno = E2BIG;
      serve_fail("request");
    }
    if (in->len - off - LIMIT_LENGTH_BYTES < size) break;
    handle_request(srv, in->buf + off + LIMIT_LENGTH_BYTES, size);
    off += LIMIT_LENGTH_BYTES + size;
  }
  memmove(in->buf, in->buf + off, in->len - off);
  in->len -= off;
  return 1;
}

/* Reaps every ended helper and reports it under its token. */
static void reap_helpers(struct server *srv, int sigfd) {
  struct signalfd_siginfo info;
  while (read(sigfd, &info, sizeof info) == (ssize_t)sizeof info) {
  }
  int wstatus;
  pid_t pid;
  while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
    struct served *h = srv->helpers, *end = srv->helpers + srv->n_helpers;
    while (h < end && h->pid != pid) h++;
    if (h == end) continue;
    if (WIFEXITED(wstatus))
      report(REPLY_ENDED " %s " STATUS_EXIT " %d", h->token, WEXITSTATUS(wstatus));
    else report(REPLY_ENDED " %s " STATUS_SIGNAL " %d", h->token, WTERMSIG(wstatus));
    *h = srv->helpers[--srv->n_helpers];
  }
}

/* ---- entry ------------------------------------------------------------ */

/* Isolated from what the server's process held, tied to its life; returns the SIGCHLD fd. */
static int start_serving(pid_t parent) {
  /* Nothing the server's process inherited beyond our stdio may reach the helpers. */
  if (close_range(3, ~0U, 0) != 0) serve_fail("close_range");
  /* Dies with the server, and so do its helpers (their own death signal). */
  const char *call = die_with_parent(parent);
  if (call != NULL) serve_fail(call);
  /* Without a fork server no job starts, and a killed helper takes its job's output.
   * Lowering takes CAP_SYS_RESOURCE (EACCES without, as in some containers): then it
   * keeps the server's. */
  if (set_oom_score_adj(OOM_SCORE_ADJ_FORK_SERVER) != 0 && errno != EACCES)
    serve_fail("write oom_score_adj");
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) serve_fail("sigprocmask");
  int sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd == -1) serve_fail("signalfd");
  return sigfd;
}

int serve(const char *socket_path, pid_t parent) {
  struct server srv = {socket_path, getpid(), NULL, 0, 0};
  report_to(1); /* replies; a forked helper moves on to its status channel */
  int sigfd = start_serving(parent);
  struct inbox in = {malloc(64 * 1024), 0, 64 * 1024};
  if (in.buf == NULL) serve_fail("malloc");
  for (;;) {
    struct pollfd pfd[2] = {{0, POLLIN, 0}, {sigfd, POLLIN, 0}};
    if (poll(pfd, 2, -1) == -1) {
      if (errno == EINTR) continue;
      serve_fail("poll");
    }
    if (pfd[1].revents) reap_helpers(&srv, sigfd);
    if (pfd[0].revents && read_requests(&srv, &in) == 0) return 0; /* the server is done with us */
  }
}
