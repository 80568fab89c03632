/* The launcher the benchmarks time every tool with (bench/measure.py, run_timed).
 *
 *   runstat REPORT_FILE COMMAND [ARG...]
 *
 * Runs COMMAND (its standard streams are this process's) and writes one line to REPORT_FILE:
 *
 *   BENCHTIME <wall s> <user s> <system s> <peak RSS KiB> <exit status, or -signal>
 *
 * Wall time is CLOCK_MONOTONIC from just before fork() to the reap; CPU time and peak RSS are
 * wait4()'s rusage of the command alone. A launcher this small matters for runs of a few
 * milliseconds: timing from the Python harness (Popen, then /usr/bin/time, each a process to
 * start) adds ~3 ms to every run of every tool, which is more than pycore's whole run on a
 * small core; and a child's ru_maxrss counts the memory of the process it was forked from until
 * its exec, so the parent must be small (this one is ~1 MiB).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: runstat REPORT_FILE COMMAND [ARG...]\n");
        return 2;
    }
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t child = fork();
    if (child < 0) {
        perror("runstat: fork");
        return 2;
    }
    if (child == 0) {
        execvp(argv[2], argv + 2);
        perror("runstat: exec");
        _exit(127);
    }
    int status = 0;
    struct rusage usage;
    if (wait4(child, &status, 0, &usage) < 0) {
        perror("runstat: wait4");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double wall = (double)(end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    double user = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6;
    double sys = usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
    int code = WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
    FILE *report = fopen(argv[1], "w");
    if (!report) {
        perror("runstat: report file");
        return 2;
    }
    fprintf(report, "BENCHTIME %.6f %.6f %.6f %ld %d\n", wall, user, sys, usage.ru_maxrss, code);
    fclose(report);
    return 0;
}
