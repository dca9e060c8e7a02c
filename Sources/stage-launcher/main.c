// stage-launcher DIR PROGRAM [ARG...]
//
// Runs PROGRAM in DIR as this process's only child, waits for it, and writes one line to descriptor 3:
//
//     EXIT WALL_NS USER_US SYSTEM_US MAXRSS_KIB
//
// EXIT is the exit code, or minus the signal number when the child was killed; the rest is the child's
// wall time, CPU time and peak resident set (its own and that of every descendant it waited for), from
// wait4. The pipeline driver starts every stage through this launcher because Linux starts a new
// program's peak RSS at the high-water mark of the process that spawned it: a stage spawned by the
// driver directly would report at least the driver's peak, which grows with the shards it hashes. This
// process stays about a megabyte, so the figures are the stage's own. When PROGRAM cannot be started
// nothing is written and the exit code is 127, with the reason on stderr.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long microseconds(struct timeval t) { return (long long)t.tv_sec * 1000000 + t.tv_usec; }

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: stage-launcher DIR PROGRAM [ARG...] (the pipeline driver starts it, with descriptor 3 open for the report)\n");
        return 2;
    }
    // The report channel is the driver's and must not reach the stage; nothing else of the driver's either.
    if (fcntl(3, F_SETFD, FD_CLOEXEC) == -1) {
        fprintf(stderr, "stage-launcher: descriptor 3 (the report to the driver) is not open\n");
        return 2;
    }
    closefrom(4);
    const char *dir = argv[1];
    const char *program = argv[2];
    if (chdir(dir) == -1) {
        fprintf(stderr, "cannot start %s: cannot enter %s: %s\n", program, dir, strerror(errno));
        return 127;
    }

    // Like system(3): an interrupt at the terminal reaches the stage, which decides; this process waits on.
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    struct timespec started, finished;
    clock_gettime(CLOCK_MONOTONIC, &started);
    pid_t child;
    int failed = posix_spawn(&child, program, NULL, &attributes, argv + 2, environ);
    posix_spawnattr_destroy(&attributes);
    if (failed) {
        fprintf(stderr, "cannot start %s: %s\n", program, strerror(failed));
        return 127;
    }
    int status;
    struct rusage usage;
    while (wait4(child, &status, 0, &usage) == -1) {
        if (errno != EINTR) {
            fprintf(stderr, "stage-launcher: lost child %d (%s): %s\n", (int)child, program, strerror(errno));
            return 127;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &finished);

    int code = WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
    long long wall = (long long)(finished.tv_sec - started.tv_sec) * 1000000000LL + (finished.tv_nsec - started.tv_nsec);
    dprintf(3, "%d %lld %lld %lld %ld\n", code, wall, microseconds(usage.ru_utime), microseconds(usage.ru_stime),
            usage.ru_maxrss);
    close(3);
    return code < 0 ? 128 - code : code;
}
