/*
 * The wire protocol between jobexec and the isolation layer, one definition
 * per side: this header and src/isolation/protocol.ts, which a unit test
 * (src/isolation/protocol.test.ts) checks against each other word by word.
 * Every value is a literal so that the test can read it: a prefix names the
 * group (FIELD_cgroup1Dir in TS is FIELD_CGROUP1_DIR here).
 *
 * Requests to the fork server (jobexec --serve) on its fd 0: a 32-bit
 * little-endian length, then that many bytes of NUL-terminated strings.
 *   launch TOKEN (FIELD VALUE)...   fork a helper for the job the fields describe
 *   kill TOKEN SIGNAL WHOM          signal that helper if not yet reaped; it queues
 *                                   the signal to init with WHOM, and init sends it
 *                                   to the job's process group, main process or
 *                                   every process of the namespace (WHOM_*)
 * Replies on its fd 1, one line each:
 *   forked TOKEN PID                the helper runs
 *   failed TOKEN STAGE ERRNO        no helper (request, fork) or it could not connect back
 *   ended TOKEN exit CODE | ended TOKEN signal N   the helper was reaped
 * A forked helper connects back three times with TOKEN and one HANDSHAKE
 * byte (stdout, stderr, status), four times when the launch has FIELD_STDIN
 * (then also stdin, which becomes its fd 0), then waits for HANDSHAKE_HELD
 * on the status connection before doing anything else (so its failures from
 * then on reach the server on connections it holds), builds the namespaces,
 * and runs the job's command only after HANDSHAKE_GO.
 *
 * The helper's status channel (fd 3), one line per event:
 *   started PID | error STAGE SYSCALL ERRNO | exit CODE | signal N
 * and the other way, from the server once the job runs (a job with a
 * terminal; ignored otherwise), one line each:
 *   resize ROWS COLS               TIOCSWINSZ on the terminal (SIGWINCH follows)
 *   interrupt                      TIOCSIG SIGINT: the terminal's foreground group
 * Stdin bytes travel on fd 0 alone, and its EOF (the server's shutdown of
 * that connection) is the end of input.
 */
#ifndef JOBEXEC_PROTOCOL_H
#define JOBEXEC_PROTOCOL_H

/* Request verbs. */
#define REQUEST_LAUNCH "launch"
#define REQUEST_KILL "kill"

/* Whom init sends a forwarded signal to (the sigqueue value; a plain kill means GROUP). */
#define WHOM_GROUP 0
#define WHOM_MAIN 1
#define WHOM_ALL 2

/* Fields of a launch request; the direct mode takes the same as --NAME options
 * (arg and env excepted: its command follows `--`, its environment is on fd 4). */
#define FIELD_CGROUP1_DIR "cgroup1-dir"
#define FIELD_CGROUP2_DIR "cgroup2-dir"
#define FIELD_PRIVATE_DIR "private-dir"
#define FIELD_HOSTNAME "hostname"
#define FIELD_UID "uid"
#define FIELD_GID "gid"
#define FIELD_CWD "cwd"
#define FIELD_HOST_NETWORK "host-network"
#define FIELD_STDIN "stdin"
#define FIELD_TTY_ROWS "tty-rows"
#define FIELD_TTY_COLS "tty-cols"
#define FIELD_ARG "arg"
#define FIELD_ENV "env"

/* Fork server replies. */
#define REPLY_FORKED "forked"
#define REPLY_FAILED "failed"
#define REPLY_ENDED "ended"

/* STAGE of a failed reply. request and fork: no helper exists. */
#define FAILED_REQUEST "request"
#define FAILED_FORK "fork"
#define FAILED_CONNECT "connect"
#define FAILED_DUP2 "dup2"

/* What a forked helper sends after its token, and what lets it go on: HELD, the server
 * holds every connection (build the namespaces); GO, the start record is durable (run
 * the command). */
#define HANDSHAKE_STDOUT 'o'
#define HANDSHAKE_STDERR 'e'
#define HANDSHAKE_STATUS 's'
#define HANDSHAKE_STDIN 'i'
#define HANDSHAKE_HELD 'h'
#define HANDSHAKE_GO 'g'

/* Status channel words; exit and signal also end an `ended` reply. */
#define STATUS_STARTED "started"
#define STATUS_ERROR "error"
#define STATUS_EXIT "exit"
#define STATUS_SIGNAL "signal"
#define STATUS_OUTPUT "output"

/* Control lines from the server on the status channel. */
#define CONTROL_RESIZE "resize"
#define CONTROL_INTERRUPT "interrupt"

/* STAGE of an error line: where the helper, init or the job failed. */
#define STAGE_ARGS "args"
#define STAGE_SETUP "setup"
#define STAGE_CLONE "clone"
#define STAGE_CGROUP "cgroup"
#define STAGE_INIT "init"
#define STAGE_MOUNT "mount"
#define STAGE_TTY "tty"
#define STAGE_NET "net"
#define STAGE_UTS "uts"
#define STAGE_KEYRING "keyring"
#define STAGE_CREDS "creds"
#define STAGE_CWD "cwd"
#define STAGE_SECCOMP "seccomp"
#define STAGE_EXEC "exec"
#define STAGE_RELAY "relay"

/* Descriptors of the direct mode (the status channel is fd 3 for a forked helper too). */
#define FD_STATUS 3
#define FD_ENV 4

/* The helper's own exit code when it failed (an error line says where). */
#define EXIT_HELPER_FAILED 125

/* Sizes. LIMIT_MAX_REQUEST is 4 MiB: argv and env are each capped far below by the job layer.
 * LIMIT_MAX_TTY_DIMENSION: struct winsize holds unsigned shorts. */
#define LIMIT_TOKEN_HEX 32
#define LIMIT_LENGTH_BYTES 4
#define LIMIT_MAX_REQUEST 4194304
#define LIMIT_MAX_ENV_BYTES 1048576
#define LIMIT_MAX_CGROUPS 16
#define LIMIT_MAX_PRIVATE_DIRS 64
#define LIMIT_LINE 256
#define LIMIT_MAX_TTY_DIMENSION 65535

#endif
