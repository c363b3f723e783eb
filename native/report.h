/*
 * Reporting of the helper, init and the job: one line per event on the
 * current process's channel upwards (the status channel, the report pipe,
 * the exec pipe or the fork server's replies), each in a single write.
 */
#ifndef JOBEXEC_REPORT_H
#define JOBEXEC_REPORT_H

/* Sends later lines to fd (the status channel, FD_STATUS, until set). */
void report_to(int fd);

/* One line, formatted, to the current channel; nothing if its reader has gone. */
__attribute__((format(printf, 1, 2))) void report(const char *fmt, ...);

/* Reports `error STAGE SYSCALL ERRNO` with the current errno, then exits EXIT_HELPER_FAILED. */
_Noreturn void fail(const char *stage, const char *syscall_name);

#endif
