/*
 * Who the kernel's OOM killer takes first (proc(5), /proc/pid/oom_score_adj,
 * -1000 never to 1000 always): jobs first, the fork server and the helpers
 * relaying jobs' output last. A value set by a privileged process is also
 * the least an unprivileged one may set later, so a job cannot lower its own.
 */
#ifndef JOBEXEC_OOM_H
#define JOBEXEC_OOM_H

/* Jobs (set by init before it forks the job): before any host process, as Kubernetes' BestEffort pods. */
#define OOM_SCORE_ADJ_JOB 1000
/* The fork server, inherited by every helper it forks: after every process but those at -1000. */
#define OOM_SCORE_ADJ_FORK_SERVER -900

/* Writes the calling process's oom_score_adj; 0, or -1 with errno set. */
int set_oom_score_adj(int value);

#endif
