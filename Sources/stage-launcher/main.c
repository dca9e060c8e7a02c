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
//
// Descriptor 4 is the lock on the stage's scratch directory: it stays open in the stage, so the lock is
// held for as long as the stage (or anything it started with the descriptor) lives, and a rerun never
// shares the directory with a stale child.
//
// The stage dies with the driver. The stage runs in a process group of its own, which this launcher kills
// (SIGKILL) when the stage exits, so nothing it started in the background outlives it, and when the driver
// dies: the kernel sends this launcher SIGTERM then (PR_SET_PDEATHSIG). That signal is SIGTERM rather than
// SIGKILL so that the launcher lives long enough to kill the whole group; the stage itself gets SIGKILL
// from the kernel should the launcher be killed first, so no path leaves it running. An interrupt or quit
// at the terminal no longer reaches the stage's group directly and is passed on to it.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/// The stage's pid, which is also its process group; 0 until it is started.
static volatile sig_atomic_t stage = 0;
/// Set by SIGTERM or SIGHUP, so that a stage not yet started never is.
static volatile sig_atomic_t stopping = 0;

static long long microseconds(struct timeval t) { return (long long)t.tv_sec * 1000000 + t.tv_usec; }

/// SIGTERM, SIGHUP (and the driver's death, which arrives as SIGTERM): the stage and its group go now; the
/// launcher goes on to reap it and report.
static void kill_stage(int signal) {
    (void)signal;
    stopping = 1;
    if (stage > 0) kill(-(pid_t)stage, SIGKILL);
}

/// SIGINT, SIGQUIT: what the terminal would have sent the stage had it stayed in the driver's group.
static void pass_on(int signal) {
    if (stage > 0) kill(-(pid_t)stage, signal);
}

static const int handled[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: stage-launcher DIR PROGRAM [ARG...] (the pipeline driver starts it, with descriptor 3 open "
                        "for the report and 4 for the scratch lock)\n");
        return 2;
    }
    // The report channel is the driver's and must not reach the stage; nothing else of the driver's either,
    // except the scratch lock.
    if (fcntl(3, F_SETFD, FD_CLOEXEC) == -1) {
        fprintf(stderr, "stage-launcher: descriptor 3 (the report to the driver) is not open\n");
        return 2;
    }
    if (fcntl(4, F_GETFD) == -1) {
        fprintf(stderr, "stage-launcher: descriptor 4 (the scratch lock) is not open\n");
        return 2;
    }
    closefrom(5);
    const char *dir = argv[1];
    const char *program = argv[2];

    struct sigaction action;
    memset(&action, 0, sizeof action);
    sigfillset(&action.sa_mask);
    for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++) {
        action.sa_handler = handled[i] == SIGINT || handled[i] == SIGQUIT ? pass_on : kill_stage;
        sigaction(handled[i], &action, NULL);
    }
    // Set before anything is started; the driver may already be gone, and then its end of the report pipe
    // is closed (it is close-on-exec, so only the driver ever holds it).
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    struct pollfd report = {.fd = 3, .events = 0};
    if (poll(&report, 1, 0) == 1 && (report.revents & POLLERR)) {
        fprintf(stderr, "stage-launcher: the driver is gone; not starting %s\n", program);
        return 127;
    }
    if (chdir(dir) == -1) {
        fprintf(stderr, "cannot start %s: cannot enter %s: %s\n", program, dir, strerror(errno));
        return 127;
    }

    // The child reports a failed exec through this pipe; it closes on a successful one.
    int exec_status[2];
    if (pipe2(exec_status, O_CLOEXEC) == -1) {
        fprintf(stderr, "cannot start %s: %s\n", program, strerror(errno));
        return 127;
    }
    sigset_t all, none, saved;
    sigfillset(&all);
    sigemptyset(&none);
    // Blocked from here until `stage` is set: a signal that came earlier set `stopping`, a later one finds
    // the stage's group.
    sigprocmask(SIG_BLOCK, &all, &saved);
    if (stopping) {
        fprintf(stderr, "stage-launcher: stopped before %s started\n", program);
        return 127;
    }
    struct timespec started, finished;
    clock_gettime(CLOCK_MONOTONIC, &started);
    pid_t launcher = getpid();
    pid_t child = fork();
    if (child == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != launcher) _exit(127);
        // Signals that arrive before the exec must act on the stage, not on a copy of the launcher's handlers.
        for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++) signal(handled[i], SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(program, argv + 2, environ);
        int code = errno;
        (void)!write(exec_status[1], &code, sizeof code);
        _exit(127);
    }
    if (child == -1) {
        fprintf(stderr, "cannot start %s: %s\n", program, strerror(errno));
        return 127;
    }
    // Both sides set the group, so that it exists whichever runs first.
    setpgid(child, child);
    stage = child;
    sigprocmask(SIG_SETMASK, &saved, NULL);
    close(exec_status[1]);
    int code = 0;
    ssize_t got;
    while ((got = read(exec_status[0], &code, sizeof code)) == -1 && errno == EINTR) {}
    close(exec_status[0]);

    int status;
    struct rusage usage;
    while (wait4(child, &status, 0, &usage) == -1) {
        if (errno != EINTR) {
            fprintf(stderr, "stage-launcher: lost child %d (%s): %s\n", (int)child, program, strerror(errno));
            kill(-child, SIGKILL);
            return 127;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &finished);
    // Whatever the stage left running in its group goes with it.
    kill(-child, SIGKILL);
    if (got == (ssize_t)sizeof code) {
        fprintf(stderr, "cannot start %s: %s\n", program, strerror(code));
        return 127;
    }

    int exit_code = WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
    long long wall = (long long)(finished.tv_sec - started.tv_sec) * 1000000000LL + (finished.tv_nsec - started.tv_nsec);
    dprintf(3, "%d %lld %lld %lld %ld\n", exit_code, wall, microseconds(usage.ru_utime), microseconds(usage.ru_stime),
            usage.ru_maxrss);
    close(3);
    return exit_code < 0 ? 128 - exit_code : exit_code;
}
