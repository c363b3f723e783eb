/* jobexec --clear-keys: see uid-keys.c. */
#ifndef JOBEXEC_UID_KEYS_H
#define JOBEXEC_UID_KEYS_H

/* Runs `jobexec --clear-keys UID`; returns the process's exit code. */
int clear_keys_main(int argc, char **argv);

#endif
