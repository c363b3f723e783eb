/* The job's default seccomp filter: see syscall-filter.c. */
#ifndef JOBEXEC_SYSCALL_FILTER_H
#define JOBEXEC_SYSCALL_FILTER_H

/*
 * Loads the filter on the calling thread (the job, just before its execve;
 * no_new_privs is already set). NULL, or the libseccomp call that failed
 * (errno set).
 */
const char *load_job_filter(void);

#endif
