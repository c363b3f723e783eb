/* jobexec --lock: see lock.c. */
#ifndef JOBEXEC_LOCK_H
#define JOBEXEC_LOCK_H

/* Runs `jobexec --lock`; returns the process's exit code. */
int lock_main(int argc, char **argv);

#endif
